using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// The product of a <see cref="BlockQuantizedMatrix{TQ}"/> with T tokens, as llama.cpp computes Q4_0 dot products:
/// each token's activations quantized per group of 32 to int8 (<see cref="ActivationQuantizer"/>), each block's 16 row sums in integers (<see cref="IQuantBlock.Dot512"/>), then once per block
/// <c>y[t, r] += (Σ stored·q − Offset·Σq) · scale[r] · d</c> in f32. Integer multiply-adds do the work of widening
/// every weight to f32 in fewer instructions, so one token streams the weights at the memory's pace and many
/// tokens share each unpacked slab (<see cref="IQuantBlock.Dot512x4"/>). The integer sums are exact and the f32 steps
/// the same on every path and for every T: the paths, and a token alone or beside others, give the same numbers.
/// </summary>
internal static unsafe class QuantizedProduct<TQ> where TQ : struct, IQuantBlock
{
    private const int P = WeightMatrix.Panel;
    private const int Group = BlockQuantizedMatrix<TQ>.Group;

    [ThreadStatic] private static AlignedBuffer? _scratch;

    /// <summary>
    /// y[t, n] = row n · x[t] for n in [<paramref name="n0"/>, <paramref name="n1"/>): <paramref name="x"/> is
    /// <c>[T, InputStride]</c>, zero past Cols; <paramref name="y"/> is <c>[T, ldy]</c>. The 256-bit path's four-token
    /// tiles take AVX-VNNI's products when <paramref name="vnni"/> and the processor has them.
    /// </summary>
    public static void Run(BlockQuantizedMatrix<TQ> w, KernelPath path, bool vnni, float* x, int T, int n0, int n1, float* y, int ldy)
    {
        if (path == KernelPath.Vector512 && !Avx512BW.IsSupported) path = KernelPath.Vector256;
        if (path == KernelPath.Vector256 && !Avx2.IsSupported) path = KernelPath.Scalar;
        int groups = w.Groups, ldx = groups * Group;
        // [T, groups·32] int8 activations, [T, groups] scales, [T, groups] offsets: per thread, grown to the largest T seen
        long bytes = (long)T * groups * (Group + 2 * sizeof(float));
        if (_scratch is null || _scratch.Bytes < bytes) _scratch = new AlignedBuffer(bytes, "activation quantization scratch");
        var a = new Activations(_scratch.Pointer, T, groups, Group);
        for (int t = 0; t < T; t++)
            ActivationQuantizer.Quantize(path, x + (long)t * ldx, groups, TQ.PairBoundActivations, TQ.Offset, a.Q + (long)t * a.Ldq, a.D + t * groups, a.Offsets + t * groups);
        if (path == KernelPath.Vector512)
        {
            if (T == 1) Stream512(w, a, n0, n1, y);
            else Tiles512(w, a, T, n0, n1, y, ldy);
        }
        else if (path == KernelPath.Vector256) Run256(w, a, vnni && AvxVnni.IsSupported, T, n0, n1, y, ldy);
        else RunScalar(w, a, T, n0, n1, y, ldy);
    }

    // the quantized activations: Q [T, groups] of groupBytes, D and Offsets (Offset · Σq) [T, groups]
    private readonly struct Activations(byte* q, int T, int groups, int groupBytes)
    {
        public readonly byte* Q = q;
        public readonly float* D = (float*)(q + (long)T * groups * groupBytes);
        public readonly int* Offsets = (int*)(q + (long)T * groups * groupBytes) + T * groups;
        public readonly int Ldq = groups * groupBytes;
        public readonly int GroupBytes = groupBytes;
        public readonly int Groups = groups;
    }

    // one token, two panels at a time, the blocks' lines prefetched ahead
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Stream512(BlockQuantizedMatrix<TQ> w, Activations a, int n0, int n1, float* y)
    {
        int groups = a.Groups, blockBytes = BlockQuantizedMatrix<TQ>.BlockBytes;
        for (int p = n0; p < n1; p += 2 * P)
        {
            bool two = p + P < n1;
            byte* b0 = w.Block(p / P, 0), b1 = two ? w.Block(p / P + 1, 0) : b0;
            Vector512<float> a0 = default, a1 = default;
            for (int g = 0; g < groups; g++, b0 += blockBytes, b1 += blockBytes)
            {
                for (int line = 0; line < blockBytes; line += 64)
                {
                    PrefetchAhead.Ahead(b0, line);
                    PrefetchAhead.Ahead(b1, line);
                }
                a0 = Scaled(TQ.Dot512(b0 + 2 * P, a.Q + g * a.GroupBytes), a.Offsets[g], Half16.ToF32x16((ushort*)b0), a.D[g], a0);
                a1 = Scaled(TQ.Dot512(b1 + 2 * P, a.Q + g * a.GroupBytes), a.Offsets[g], Half16.ToF32x16((ushort*)b1), a.D[g], a1);
            }
            Put(a0, y + p, Math.Min(P, n1 - p));
            if (two) Put(a1, y + p + P, Math.Min(P, n1 - p - P));
        }
    }

    // Tokens in blocks whose activations stay in L2 (every panel reads all of them); within a block a panel at a time, in
    // k-blocks of GroupsPerBlock groups, eight tokens at a time: the first eight stream the k-block's weights from memory,
    // the rest find them in L1 beside their activations (8.5 KB of int8 weights and 4 KB of activations a tile). Between
    // k-blocks the sums wait in y, which holds f32 exactly, so each output still takes its blocks in one chain.
    private const int BlockActivationBytes = 256 << 10;
    private const int GroupsPerBlock = 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles512(BlockQuantizedMatrix<TQ> w, Activations a, int T, int n0, int n1, float* y, int ldy)
    {
        int tokensPerBlock = Math.Max(8, BlockActivationBytes / a.Ldq / 8 * 8);
        for (int t0 = 0; t0 < T; t0 += tokensPerBlock)
            Tiles512(w, a, t0, Math.Min(T, t0 + tokensPerBlock), n0, n1, y, ldy);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles512(BlockQuantizedMatrix<TQ> w, Activations a, int t0, int t1, int n0, int n1, float* y, int ldy)
    {
        int groups = a.Groups;
        for (int p = n0; p < n1; p += P)
            for (int g0 = 0; g0 < groups; g0 += GroupsPerBlock)
                Tiles512(w, a, t0, t1, p, Math.Min(P, n1 - p), g0, Math.Min(groups, g0 + GroupsPerBlock), y, ldy);
    }

    // tokens [t0, t1) × panel rows [p, p + valid) over groups [g0, g1), adding to y unless g0 is the first group
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles512(BlockQuantizedMatrix<TQ> w, Activations a, int t0, int t1, int p, int valid, int g0, int g1, float* y, int ldy)
    {
        int groups = a.Groups, ldq = a.Ldq, blockBytes = BlockQuantizedMatrix<TQ>.BlockBytes;
        {
            byte* first = w.Block(p / P, g0);
            int t = t0;
            for (; t + 8 <= t1; t += 8)
            {
                float* yt = y + (long)t * ldy + p;
                Vector512<float> a0 = Get(yt, valid, g0), a1 = Get(yt + ldy, valid, g0), a2 = Get(yt + 2 * ldy, valid, g0), a3 = Get(yt + 3 * ldy, valid, g0),
                    a4 = Get(yt + 4 * ldy, valid, g0), a5 = Get(yt + 5 * ldy, valid, g0), a6 = Get(yt + 6 * ldy, valid, g0), a7 = Get(yt + 7 * ldy, valid, g0);
                byte* b = first;
                byte* q = a.Q + (long)t * ldq + g0 * a.GroupBytes;
                float* d = a.D + t * groups + g0;
                int* offsets = a.Offsets + t * groups + g0;
                for (int g = g0; g < g1; g++, b += blockBytes, q += a.GroupBytes, d++, offsets++)
                {
                    if (t == t0) for (int line = 0; line < blockBytes; line += 64) PrefetchAhead.Ahead(b, line);
                    TQ.Dot512x8(b + 2 * P, q, ldq, out var s0, out var s1, out var s2, out var s3, out var s4, out var s5, out var s6, out var s7);
                    var scale = Half16.ToF32x16((ushort*)b);
                    a0 = Scaled(s0, offsets[0], scale, d[0], a0);
                    a1 = Scaled(s1, offsets[groups], scale, d[groups], a1);
                    a2 = Scaled(s2, offsets[2 * groups], scale, d[2 * groups], a2);
                    a3 = Scaled(s3, offsets[3 * groups], scale, d[3 * groups], a3);
                    a4 = Scaled(s4, offsets[4 * groups], scale, d[4 * groups], a4);
                    a5 = Scaled(s5, offsets[5 * groups], scale, d[5 * groups], a5);
                    a6 = Scaled(s6, offsets[6 * groups], scale, d[6 * groups], a6);
                    a7 = Scaled(s7, offsets[7 * groups], scale, d[7 * groups], a7);
                }
                Put(a0, yt, valid);
                Put(a1, yt + ldy, valid);
                Put(a2, yt + 2 * ldy, valid);
                Put(a3, yt + 3 * ldy, valid);
                Put(a4, yt + 4 * ldy, valid);
                Put(a5, yt + 5 * ldy, valid);
                Put(a6, yt + 6 * ldy, valid);
                Put(a7, yt + 7 * ldy, valid);
            }
            for (; t + 4 <= t1; t += 4)
            {
                float* yt = y + (long)t * ldy + p;
                Vector512<float> a0 = Get(yt, valid, g0), a1 = Get(yt + ldy, valid, g0), a2 = Get(yt + 2 * ldy, valid, g0), a3 = Get(yt + 3 * ldy, valid, g0);
                byte* b = first;
                byte* q = a.Q + (long)t * ldq + g0 * a.GroupBytes;
                float* d = a.D + t * groups + g0;
                int* offsets = a.Offsets + t * groups + g0;
                for (int g = g0; g < g1; g++, b += blockBytes, q += a.GroupBytes, d++, offsets++)
                {
                    if (t == t0) for (int line = 0; line < blockBytes; line += 64) PrefetchAhead.Ahead(b, line);
                    TQ.Dot512x4(b + 2 * P, q, ldq, out var s0, out var s1, out var s2, out var s3);
                    var scale = Half16.ToF32x16((ushort*)b);
                    a0 = Scaled(s0, offsets[0], scale, d[0], a0);
                    a1 = Scaled(s1, offsets[groups], scale, d[groups], a1);
                    a2 = Scaled(s2, offsets[2 * groups], scale, d[2 * groups], a2);
                    a3 = Scaled(s3, offsets[3 * groups], scale, d[3 * groups], a3);
                }
                Put(a0, yt, valid);
                Put(a1, yt + ldy, valid);
                Put(a2, yt + 2 * ldy, valid);
                Put(a3, yt + 3 * ldy, valid);
            }
            for (; t < t1; t++)
            {
                float* yt = y + (long)t * ldy + p;
                Vector512<float> acc = Get(yt, valid, g0);
                byte* b = first;
                for (int g = g0; g < g1; g++, b += blockBytes)
                {
                    int i = t * groups + g;
                    acc = Scaled(TQ.Dot512(b + 2 * P, a.Q + (long)t * ldq + g * a.GroupBytes), a.Offsets[i], Half16.ToF32x16((ushort*)b), a.D[i], acc);
                }
                Put(acc, yt, valid);
            }
        }
    }

    // Two panels at a time, each as two halves of 8 rows: tokens in tiles of four a panel (each load of levels and each
    // block's scales shared by the four, four chains in flight), then one at a time over both panels (a token alone, as in
    // decode, streams two panels' blocks with four chains); after the first pass, the panels are in cache.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(BlockQuantizedMatrix<TQ> w, Activations a, bool vnni, int T, int n0, int n1, float* y, int ldy)
    {
        int groups = a.Groups, ldq = a.Ldq, blockBytes = BlockQuantizedMatrix<TQ>.BlockBytes, t4 = T / 4 * 4;
        for (int p = n0; p < n1; p += 2 * P)
        {
            bool two = p + P < n1;
            int valid0 = Math.Min(P, n1 - p), valid1 = two ? Math.Min(P, n1 - p - P) : 0;
            Tiles256(w, a, vnni, t4, p, valid0, y, ldy);
            if (two) Tiles256(w, a, vnni, t4, p + P, valid1, y, ldy);
            for (int t = t4; t < T; t++)
            {
                byte* b0 = w.Block(p / P, 0), b1 = two ? w.Block(p / P + 1, 0) : b0;
                Vector256<float> lo0 = default, hi0 = default, lo1 = default, hi1 = default;
                for (int g = 0; g < groups; g++, b0 += blockBytes, b1 += blockBytes)
                {
                    if (t == 0)
                        for (int line = 0; line < blockBytes; line += 64)
                        {
                            PrefetchAhead.Ahead(b0, line);
                            PrefetchAhead.Ahead(b1, line);
                        }
                    int i = t * groups + g;
                    byte* q = a.Q + (long)t * ldq + g * a.GroupBytes;
                    lo0 = Scaled(TQ.Dot256(b0 + 2 * P, q, 0), a.Offsets[i], Half16.ToF32x8((ushort*)b0), a.D[i], lo0);
                    hi0 = Scaled(TQ.Dot256(b0 + 2 * P, q, 1), a.Offsets[i], Half16.ToF32x8((ushort*)b0 + 8), a.D[i], hi0);
                    lo1 = Scaled(TQ.Dot256(b1 + 2 * P, q, 0), a.Offsets[i], Half16.ToF32x8((ushort*)b1), a.D[i], lo1);
                    hi1 = Scaled(TQ.Dot256(b1 + 2 * P, q, 1), a.Offsets[i], Half16.ToF32x8((ushort*)b1 + 8), a.D[i], hi1);
                }
                float* yt = y + (long)t * ldy + p;
                Put(lo0, yt, valid0, 0);
                Put(hi0, yt, valid0, 1);
                if (!two) continue; // a lone last panel was computed twice, stored once
                Put(lo1, yt + P, valid1, 0);
                Put(hi1, yt + P, valid1, 1);
            }
        }
    }

    // tokens [0, t4) of panel rows [p, p + valid) in tiles of four, half a panel at a time
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles256(BlockQuantizedMatrix<TQ> w, Activations a, bool vnni, int t4, int p, int valid, float* y, int ldy)
    {
        int groups = a.Groups, ldq = a.Ldq, blockBytes = BlockQuantizedMatrix<TQ>.BlockBytes;
        byte* first = w.Block(p / P, 0);
        for (int t = 0; t < t4; t += 4)
            for (int half = 0; half < 2; half++)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                byte* b = first;
                byte* q = a.Q + (long)t * ldq;
                float* d = a.D + t * groups;
                int* offsets = a.Offsets + t * groups;
                for (int g = 0; g < groups; g++, b += blockBytes, q += a.GroupBytes, d++, offsets++)
                {
                    if (t == 0 && half == 0) for (int line = 0; line < blockBytes; line += 64) PrefetchAhead.Ahead(b, line);
                    TQ.Dot256x4(b + 2 * P, q, ldq, half, vnni, out var s0, out var s1, out var s2, out var s3);
                    var scale = Half16.ToF32x8((ushort*)b + 8 * half);
                    a0 = Scaled(s0, offsets[0], scale, d[0], a0);
                    a1 = Scaled(s1, offsets[groups], scale, d[groups], a1);
                    a2 = Scaled(s2, offsets[2 * groups], scale, d[2 * groups], a2);
                    a3 = Scaled(s3, offsets[3 * groups], scale, d[3 * groups], a3);
                }
                float* yt = y + (long)t * ldy + p;
                Put(a0, yt, valid, half);
                Put(a1, yt + ldy, valid, half);
                Put(a2, yt + 2 * ldy, valid, half);
                Put(a3, yt + 3 * ldy, valid, half);
            }
    }

    // Scaled in 256-bit vectors: the same operations, so the same numbers
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scaled(Vector256<int> sum, int offset, Vector256<float> scale, float d, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum - Vector256.Create(offset)), scale * Vector256.Create(d), acc);

    // rows [8·half, 8·half + 8) of a panel's outputs, of which the first valid (of the panel's 16) are real
    private static void Put(Vector256<float> v, float* dst, int valid, int half)
    {
        if (valid == P) v.Store(dst + 8 * half);
        else for (int r = 8 * half; r < Math.Min(valid, 8 * half + 8); r++) dst[r] = v.GetElement(r - 8 * half);
    }

    private static void RunScalar(BlockQuantizedMatrix<TQ> w, Activations a, int T, int n0, int n1, float* y, int ldy)
    {
        for (int t = 0; t < T; t++)
            for (int n = n0; n < n1; n++)
            {
                float acc = 0;
                for (int g = 0; g < a.Groups; g++)
                {
                    byte* block = w.Block(n / P, g);
                    byte* q = a.Q + (long)t * a.Ldq + g * a.GroupBytes;
                    int sum = 0;
                    for (int c = 0; c < Group; c++) sum += TQ.Level(block + 2 * P, n % P, c) * ((sbyte*)q)[c];
                    acc = MathF.FusedMultiplyAdd(sum, Half16.ToF32(((ushort*)block)[n % P]) * a.D[t * a.Groups + g], acc);
                }
                y[(long)t * ldy + n] = acc;
            }
    }

    // acc + (block sum − Offset · Σxq) · row scales · the activations' scale: the one rounding sequence of every 512-bit tile
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scaled(Vector512<int> sum, int offset, Vector512<float> scale, float d, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(sum - Vector512.Create(offset)), scale * Vector512.Create(d), acc);

    // the sums so far of rows [0, valid) of a tile: zero before the first group, else what the last k-block left in y
    private static Vector512<float> Get(float* src, int valid, int g0)
    {
        if (g0 == 0) return default;
        if (valid == P) return Vector512.Load(src);
        var v = Vector512<float>.Zero;
        for (int i = 0; i < valid; i++) v = v.WithElement(i, src[i]);
        return v;
    }

    private static void Put(Vector512<float> v, float* dst, int valid)
    {
        if (valid == P) v.Store(dst);
        else for (int i = 0; i < valid; i++) dst[i] = v.GetElement(i);
    }
}
