using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors;

/// <summary>
/// Serial bf16-weight × f32-activation kernels over output rows [n0, n1):
/// <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c>, accumulating in f32. <c>w</c> is panel storage
/// <c>[rows/16][ceil(K/2)][16][2]</c> (see <see cref="WeightMatrix"/>), <c>x</c> is <c>[T, K]</c>,
/// <c>y</c> is <c>[T, ldy]</c>; n0 is a multiple of 16.
/// On AVX-512 the rows go two panels (32 rows) at a time, over K in blocks of <c>KBlock</c> column pairs;
/// tokens go in register tiles of 12 (a 12 and a 4 as one 16), then 8, 4 and 1 (<see cref="Bf16Tiles512"/>): no horizontal sums,
/// weights read from memory once per call and prefetched ahead by the first tile.
/// </summary>
public static unsafe class Bf16Gemm
{
    private const int P = WeightMatrix.Panel;

    /// <summary>Runs rows [n0, n1) on <paramref name="path"/>.</summary>
    public static void Run(KernelPath path, float* x, int T, int K, ushort* w, int n0, int n1, float* y, int ldy)
    {
        if (n0 % P != 0) throw new ArgumentException($"row start {n0} is not a multiple of {P}");
        switch (path)
        {
            case KernelPath.Vector512: Run512(x, T, K, w, n0, n1, y, ldy); break;
            case KernelPath.Vector256: Run256(x, T, K, w, n0, n1, y, ldy); break;
            default: RunScalar(x, T, K, w, n0, n1, y, ldy); break;
        }
    }

    private static int Pairs(int K) => (K + 1) / 2;

    private const int KBlock = 512; // column pairs per k-block
    private const int TBlock = 96;  // tokens per block: a multiple of 12

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunScalar(float* x, int T, int K, ushort* w, int n0, int n1, float* y, int ldy)
    {
        for (int n = n0; n < n1; n++)
        {
            ushort* col = w + (long)(n / P) * Pairs(K) * 2 * P + (n % P) * 2;
            for (int t = 0; t < T; t++)
            {
                float acc = 0;
                for (int k = 0; k < K; k++) acc += Bf16.ToF32(col[(long)(k >> 1) * 2 * P + (k & 1)]) * x[(long)t * K + k];
                y[(long)t * ldy + n] = acc;
            }
        }
    }

    // ---- AVX2: one panel (two 8-row halves) × one token ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(float* x, int T, int K, ushort* w, int n0, int n1, float* y, int ldy)
    {
        Span<float> tmp = stackalloc float[P];
        var mask = Vector256.Create(0xFFFF0000u);
        int pairs = Pairs(K);
        for (int p = n0; p < n1; p += P)
        {
            uint* wp = (uint*)(w + (long)(p / P) * pairs * 2 * P);
            for (int t = 0; t < T; t++)
            {
                float* xt = x + (long)t * K;
                Vector256<float> lo = default, hi = default;
                for (int kk = 0; kk < pairs; kk++)
                {
                    var u0 = Vector256.Load(wp + (long)kk * P);
                    var u1 = Vector256.Load(wp + (long)kk * P + 8);
                    var xe = Vector256.Create(xt[2 * kk]);
                    lo = Vector256.FusedMultiplyAdd((u0 << 16).AsSingle(), xe, lo);
                    hi = Vector256.FusedMultiplyAdd((u1 << 16).AsSingle(), xe, hi);
                    if (2 * kk + 1 < K)
                    {
                        var xo = Vector256.Create(xt[2 * kk + 1]);
                        lo = Vector256.FusedMultiplyAdd((u0 & mask).AsSingle(), xo, lo);
                        hi = Vector256.FusedMultiplyAdd((u1 & mask).AsSingle(), xo, hi);
                    }
                }
                lo.CopyTo(tmp);
                hi.CopyTo(tmp[8..]);
                Store(tmp, y + (long)t * ldy + p, Math.Min(P, n1 - p));
            }
        }
    }

    private static void Store(ReadOnlySpan<float> v, float* dst, int count)
    {
        for (int i = 0; i < count; i++) dst[i] = v[i];
    }

    // ---- AVX-512: the tiles are in Bf16Tiles512 ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(float* x, int T, int K, ushort* w, int n0, int n1, float* y, int ldy)
    {
        int t12 = T / 12 * 12, t8 = t12 + (T - t12) / 8 * 8, t4 = t8 + (T - t8) / 4 * 4, pairs = K >> 1, allPairs = Math.Max(pairs, 1);
        int t16 = Start16(T, t12, t8, t4);
        float* xp = t4 > 0 ? Pack(x, K, t12, t8, t4, t16) : null;
        byte* spillBytes = stackalloc byte[Bf16Tiles512.SpillBytes + 64];
        float* spill = (float*)(((nint)spillBytes + 63) & ~(nint)63);
        for (int tb = 0; tb < T; tb += TBlock)
        {
            // tokens in blocks, so one block's activations for a k-block (8 × 48 KB) stay in L2 across all the panels;
            // every block but the last is whole 12-token tiles
            int tEnd = Math.Min(T, tb + TBlock);
            bool oneTile = OneTile(tb, tEnd, t12, t8, t4, t16);
            for (int p = n0; p < n1; p += 2 * P)
            {
                uint* w0 = (uint*)(w + (long)(p / P) * Pairs(K) * 2 * P);
                bool two = p + P < n1;
                uint* w1 = two ? w0 + (long)Pairs(K) * P : w0; // a lone last panel is computed twice, stored once
                int valid0 = Math.Min(P, n1 - p), valid1 = two ? Math.Min(P, n1 - p - P) : 0;
                // full panels go over K in blocks, every token tile per block, so the first tile reads a block of weights
                // from memory (prefetching ahead) and the others find it in cache; a token block that is one tile has
                // nothing to share a block with, so it goes over K in one pass
                int block = valid0 == P && valid1 == P && !oneTile ? KBlock : allPairs;
                float* yk = y + p;
                for (int k0 = 0; k0 < allPairs; k0 += block)
                {
                    int k1 = Math.Min(pairs, k0 + block);
                    int t = tb;
                    for (; t < Math.Min(t12, tEnd); t += 12)
                    {
                        if (t == t16)
                        {
                            Bf16Tiles512.Tile16(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, spill, t == tb);
                            t += 4;
                        }
                        else Bf16Tiles512.Tile12(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, t == tb);
                    }
                    if (t < t8 && t < tEnd) { Bf16Tiles512.Tile8(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, t == tb); t += 8; }
                    if (t < t4 && t < tEnd) { Bf16Tiles512.Tile4(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, t == tb); t += 4; }
                    for (; t < tEnd; t++) Bf16Tiles512.Tile1(x + (long)t * K, K, w0, w1, yk + (long)t * ldy, valid0, valid1, k0, k1, t == tb);
                }
            }
        }
    }

    // Whether tokens [tb, tEnd) go as a single tile (the first tile Run512 runs from tb reaches tEnd).
    private static bool OneTile(int tb, int tEnd, int t12, int t8, int t4, int t16) =>
        tb + (tb == t16 ? 16 : tb < t12 ? 12 : tb < t8 ? 8 : tb < t4 ? 4 : 1) >= tEnd;

    // Where a 4-token tile would follow a 12-token tile in the same token block, the two go as one 16-token tile, which
    // widens each weight once instead of twice and streams the weights evenly (Llama-3-8B head, T = 16, two threads, quiet
    // rounds of an A/B run: 72–73 ms against 80–81 ms; docs/performance.md, session 7). Returns that tile's first token, or -1.
    private static int Start16(int T, int t12, int t8, int t4) =>
        t8 == t12 && t4 == t12 + 4 && t12 - 12 >= (T - 1) / TBlock * TBlock ? t12 - 12 : -1;

    // x for the 12-, 16-, 8- and 4-token tiles, interleaved so a tile's broadcasts per column sit at fixed offsets from one
    // pointer: [K][width] per tile, tile after tile ([T/12][K][12], or one [K][16] in place of the last 12-token tile and the
    // 4-token tile, then [K][8] and [K][4]). Grows once per thread; pinned, and used from a 64-byte boundary, so a column's
    // broadcasts share as few cache lines as they can.
    [ThreadStatic] private static float[]? _packed;

    // tokens [0, t12) in 12-token tiles except a 16-token tile from t16 (if not -1), [t12, t8) in one 8-token tile,
    // [t8, t4) in one 4-token tile (the tiles Run512 runs)
    private static float* Pack(float* x, int K, int t12, int t8, int t4, int t16)
    {
        long need = (long)t4 * K + 16;
        if (_packed is null || _packed.Length < need) _packed = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
        var dst = (float*)(((nint)Unsafe.AsPointer(ref _packed[0]) + 63) & ~(nint)63);
        for (int t0 = 0; t0 < t4;)
        {
            int width = t0 == t16 ? 16 : t0 < t12 ? 12 : t0 < t8 ? 8 : 4;
            float* d = dst + (long)t0 * K;
            for (int t = 0; t < width; t++)
            {
                float* src = x + (long)(t0 + t) * K;
                for (int k = 0; k < K; k++) d[(long)k * width + t] = src[k];
            }
            t0 += width;
        }
        return dst;
    }
}
