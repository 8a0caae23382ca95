using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors;

/// <summary>
/// Serial bf16-weight × f32-activation kernels over output rows [n0, n1):
/// <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c>, accumulating in f32. <c>w</c> is panel storage
/// <c>[rows/16][ceil(K/2)][16][2]</c> (see <see cref="WeightMatrix"/>), <c>x</c> is <c>[T, K]</c>,
/// <c>y</c> is <c>[T, ldy]</c>; n0 is a multiple of 16.
/// The AVX-512 microkernel holds a 32-row × 8-token tile of outputs in 16 registers; per column
/// pair it loads 64 bytes of each of two panels, widens them with one shift and one AND each, and
/// broadcasts activations from memory: no horizontal sums, weights read once per 8 tokens.
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

    private const int KBlock = 128; // column pairs per k-block of the 8-token tiles

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

    // ---- AVX-512 ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512(float* x, int T, int K, ushort* w, int n0, int n1, float* y, int ldy)
    {
        var packed = T >= 8 ? Pack8(x, T, K) : null;
        fixed (float* xp = packed)
        for (int p = n0; p < n1; p += 2 * P)
        {
            uint* w0 = (uint*)(w + (long)(p / P) * Pairs(K) * 2 * P);
            bool two = p + P < n1;
            uint* w1 = two ? w0 + (long)Pairs(K) * P : w0; // a lone last panel is computed twice, stored once
            int valid0 = Math.Min(P, n1 - p), valid1 = two ? Math.Min(P, n1 - p - P) : 0;
            int t = 0;
            // full panels go over K in blocks, every 8-token tile per block, so a block of weights
            // (KBlock column pairs of two panels, 16 KB) is reused from L1 by all tiles
            int pairs = K >> 1, block = valid0 == P && valid1 == P ? KBlock : Math.Max(pairs, 1);
            for (int k0 = 0; k0 < Math.Max(pairs, 1); k0 += block)
            {
                int k1 = Math.Min(pairs, k0 + block);
                for (int tt = 0; tt + 8 <= T; tt += 8) Tile8(xp + (long)tt * K, K, w0, w1, y + (long)tt * ldy + p, ldy, valid0, valid1, k0, k1);
            }
            t = T / 8 * 8;
            for (; t + 4 <= T; t += 4) Tile4(x + (long)t * K, K, w0, w1, y + (long)t * ldy + p, ldy, valid0, valid1);
            for (; t < T; t++) Tile1(x + (long)t * K, K, w0, w1, y + (long)t * ldy + p, valid0, valid1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Widen2(uint* p, out Vector512<float> k0, out Vector512<float> k1)
    {
        var u = Vector512.Load(p); // 16 rows × columns (k, k+1)
        k0 = (u << 16).AsSingle();
        k1 = (u & Vector512.Create(0xFFFF0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen1(uint* p) => (Vector512.Load(p) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector512<float> v, float* dst, int valid)
    {
        if (valid == P) v.Store(dst);
        else for (int i = 0; i < valid; i++) dst[i] = v.GetElement(i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> F(Vector512<float> a, Vector512<float> b, float* x, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(b, Vector512.Create(x[1]), Vector512.FusedMultiplyAdd(a, Vector512.Create(x[0]), acc));

    // x for 8-token tiles, interleaved [T/8][K][8] so a tile's 8 broadcasts per column sit at fixed
    // offsets from one pointer: no per-token address arithmetic in the inner loop. Grows once per thread.
    [ThreadStatic] private static float[]? _packed;

    private static float[] Pack8(float* x, int T, int K)
    {
        int tiles = T / 8;
        long need = (long)tiles * K * 8;
        if (_packed is null || _packed.Length < need) _packed = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
        fixed (float* dst = _packed)
            for (int tile = 0; tile < tiles; tile++)
            {
                float* d = dst + (long)tile * K * 8;
                for (int t = 0; t < 8; t++)
                {
                    float* src = x + (long)(tile * 8 + t) * K;
                    for (int k = 0; k < K; k++) d[(long)k * 8 + t] = src[k];
                }
            }
        return _packed;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8(float* xp, int K, uint* w0, uint* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1)
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
        if (pair0 == 0)
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = default;
        }
        else
        {
            // a later k-block: continue from the partial sums (stored exactly, so the order of accumulation is unchanged)
            float* z = y + P;
            a0 = Vector512.Load(y); a1 = Vector512.Load(y + ldy); a2 = Vector512.Load(y + 2L * ldy); a3 = Vector512.Load(y + 3L * ldy);
            a4 = Vector512.Load(y + 4L * ldy); a5 = Vector512.Load(y + 5L * ldy); a6 = Vector512.Load(y + 6L * ldy); a7 = Vector512.Load(y + 7L * ldy);
            b0 = Vector512.Load(z); b1 = Vector512.Load(z + ldy); b2 = Vector512.Load(z + 2L * ldy); b3 = Vector512.Load(z + 3L * ldy);
            b4 = Vector512.Load(z + 4L * ldy); b5 = Vector512.Load(z + 5L * ldy); b6 = Vector512.Load(z + 6L * ldy); b7 = Vector512.Load(z + 7L * ldy);
        }
        var mask = Vector512.Create(0xFFFF0000u);
        xp += (long)pair0 * 16;
        uint* end = w1 + (long)pair1 * P;
        w0 += (long)pair0 * P;
        w1 += (long)pair0 * P;
        for (; w1 < end; w0 += P, w1 += P, xp += 16)
        {
            var u0 = Vector512.Load(w0);
            var u1 = Vector512.Load(w1);
            var e0 = (u0 << 16).AsSingle(); var f0 = (u0 & mask).AsSingle();
            var e1 = (u1 << 16).AsSingle(); var f1 = (u1 & mask).AsSingle();
            // per token: even column then odd column, the order of F() and Tile1
            Vector512<float> c, d;
            c = Vector512.Create(xp[0]); d = Vector512.Create(xp[8]);
            a0 = Vector512.FusedMultiplyAdd(e0, c, a0); b0 = Vector512.FusedMultiplyAdd(e1, c, b0); a0 = Vector512.FusedMultiplyAdd(f0, d, a0); b0 = Vector512.FusedMultiplyAdd(f1, d, b0);
            c = Vector512.Create(xp[1]); d = Vector512.Create(xp[9]);
            a1 = Vector512.FusedMultiplyAdd(e0, c, a1); b1 = Vector512.FusedMultiplyAdd(e1, c, b1); a1 = Vector512.FusedMultiplyAdd(f0, d, a1); b1 = Vector512.FusedMultiplyAdd(f1, d, b1);
            c = Vector512.Create(xp[2]); d = Vector512.Create(xp[10]);
            a2 = Vector512.FusedMultiplyAdd(e0, c, a2); b2 = Vector512.FusedMultiplyAdd(e1, c, b2); a2 = Vector512.FusedMultiplyAdd(f0, d, a2); b2 = Vector512.FusedMultiplyAdd(f1, d, b2);
            c = Vector512.Create(xp[3]); d = Vector512.Create(xp[11]);
            a3 = Vector512.FusedMultiplyAdd(e0, c, a3); b3 = Vector512.FusedMultiplyAdd(e1, c, b3); a3 = Vector512.FusedMultiplyAdd(f0, d, a3); b3 = Vector512.FusedMultiplyAdd(f1, d, b3);
            c = Vector512.Create(xp[4]); d = Vector512.Create(xp[12]);
            a4 = Vector512.FusedMultiplyAdd(e0, c, a4); b4 = Vector512.FusedMultiplyAdd(e1, c, b4); a4 = Vector512.FusedMultiplyAdd(f0, d, a4); b4 = Vector512.FusedMultiplyAdd(f1, d, b4);
            c = Vector512.Create(xp[5]); d = Vector512.Create(xp[13]);
            a5 = Vector512.FusedMultiplyAdd(e0, c, a5); b5 = Vector512.FusedMultiplyAdd(e1, c, b5); a5 = Vector512.FusedMultiplyAdd(f0, d, a5); b5 = Vector512.FusedMultiplyAdd(f1, d, b5);
            c = Vector512.Create(xp[6]); d = Vector512.Create(xp[14]);
            a6 = Vector512.FusedMultiplyAdd(e0, c, a6); b6 = Vector512.FusedMultiplyAdd(e1, c, b6); a6 = Vector512.FusedMultiplyAdd(f0, d, a6); b6 = Vector512.FusedMultiplyAdd(f1, d, b6);
            c = Vector512.Create(xp[7]); d = Vector512.Create(xp[15]);
            a7 = Vector512.FusedMultiplyAdd(e0, c, a7); b7 = Vector512.FusedMultiplyAdd(e1, c, b7); a7 = Vector512.FusedMultiplyAdd(f0, d, a7); b7 = Vector512.FusedMultiplyAdd(f1, d, b7);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            var e0 = Widen1(w0);
            var e1 = Widen1(w1);
            a0 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[0]), a0); b0 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[0]), b0);
            a1 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[1]), a1); b1 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[1]), b1);
            a2 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[2]), a2); b2 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[2]), b2);
            a3 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[3]), a3); b3 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[3]), b3);
            a4 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[4]), a4); b4 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[4]), b4);
            a5 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[5]), a5); b5 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[5]), b5);
            a6 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[6]), a6); b6 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[6]), b6);
            a7 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[7]), a7); b7 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[7]), b7);
        }
        Put(a0, y, v0); Put(a1, y + ldy, v0); Put(a2, y + 2L * ldy, v0); Put(a3, y + 3L * ldy, v0);
        Put(a4, y + 4L * ldy, v0); Put(a5, y + 5L * ldy, v0); Put(a6, y + 6L * ldy, v0); Put(a7, y + 7L * ldy, v0);
        if (v1 == 0) return;
        y += P;
        Put(b0, y, v1); Put(b1, y + ldy, v1); Put(b2, y + 2L * ldy, v1); Put(b3, y + 3L * ldy, v1);
        Put(b4, y + 4L * ldy, v1); Put(b5, y + 5L * ldy, v1); Put(b6, y + 6L * ldy, v1); Put(b7, y + 7L * ldy, v1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4(float* x, int K, uint* w0, uint* w1, float* y, int ldy, int v0, int v1)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        float* x1 = x + K, x2 = x1 + K, x3 = x2 + K;
        int k = 0;
        for (; k + 2 <= K; k += 2)
        {
            Widen2(w0 + (long)(k >> 1) * P, out var e0, out var f0);
            Widen2(w1 + (long)(k >> 1) * P, out var e1, out var f1);
            a0 = F(e0, f0, x + k, a0); b0 = F(e1, f1, x + k, b0);
            a1 = F(e0, f0, x1 + k, a1); b1 = F(e1, f1, x1 + k, b1);
            a2 = F(e0, f0, x2 + k, a2); b2 = F(e1, f1, x2 + k, b2);
            a3 = F(e0, f0, x3 + k, a3); b3 = F(e1, f1, x3 + k, b3);
        }
        if (k < K)
        {
            var e0 = Widen1(w0 + (long)(k >> 1) * P);
            var e1 = Widen1(w1 + (long)(k >> 1) * P);
            a0 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(x[k]), a0); b0 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(x[k]), b0);
            a1 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(x1[k]), a1); b1 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(x1[k]), b1);
            a2 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(x2[k]), a2); b2 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(x2[k]), b2);
            a3 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(x3[k]), a3); b3 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(x3[k]), b3);
        }
        Put(a0, y, v0); Put(a1, y + ldy, v0); Put(a2, y + 2L * ldy, v0); Put(a3, y + 3L * ldy, v0);
        if (v1 == 0) return;
        y += P;
        Put(b0, y, v1); Put(b1, y + ldy, v1); Put(b2, y + 2L * ldy, v1); Put(b3, y + 3L * ldy, v1);
    }

    // one token: the same accumulation order as the 4- and 8-token tiles (one chain per panel,
    // column pairs in order), so a sequence's logits do not depend on the batch it runs in
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1(float* x, int K, uint* w0, uint* w1, float* y, int v0, int v1)
    {
        Vector512<float> a0 = default, b0 = default;
        int k = 0;
        for (; k + 2 <= K; k += 2)
        {
            Widen2(w0 + (long)(k >> 1) * P, out var e0, out var f0);
            Widen2(w1 + (long)(k >> 1) * P, out var e1, out var f1);
            a0 = F(e0, f0, x + k, a0); b0 = F(e1, f1, x + k, b0);
        }
        if (k < K)
        {
            var xv = Vector512.Create(x[k]);
            a0 = Vector512.FusedMultiplyAdd(Widen1(w0 + (long)(k >> 1) * P), xv, a0);
            b0 = Vector512.FusedMultiplyAdd(Widen1(w1 + (long)(k >> 1) * P), xv, b0);
        }
        Put(a0, y, v0);
        if (v1 > 0) Put(b0, y + P, v1);
    }
}
