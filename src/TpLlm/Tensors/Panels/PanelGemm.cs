using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

/// <summary>
/// Serial panel kernels over output rows [n0, n1): <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c>, accumulating in f32, for
/// any panel element type (<see cref="IPanelWeights"/>) read through any <see cref="IPanelSource"/>. Panels are
/// <c>[rows/16][ceil(K/2)][16][2]</c>; <c>x</c> is <c>[T, K]</c>, <c>y</c> is <c>[T, ldy]</c>; n0 is a multiple of 16.
/// On AVX2 the rows go two panels at a time, tokens in tiles of 4 and 1 (<see cref="PanelTiles256"/>).
/// On AVX-512 the rows go two panels (32 rows) at a time, over K in blocks of <c>KBlock</c> column pairs (or the
/// source's <see cref="IPanelSource.MaxPairs"/>); tokens go in register tiles of 12 (a 12 and a 4 as one 16), then 8,
/// 4 and 1 (<see cref="PanelTiles512"/>): no horizontal sums, weights read once per call and prefetched ahead by the
/// first tile. Every output accumulates in one chain, column pairs in order, so the paths agree to rounding and a
/// token's output does not depend on its batch.
/// </summary>
internal static unsafe class PanelGemm
{
    private const int P = WeightMatrix.Panel;
    private const int KBlock = 512; // column pairs per k-block
    private const int TBlock = 96;  // tokens per block: a multiple of 12

    /// <summary>Runs rows [n0, n1) on <paramref name="path"/>.</summary>
    public static void Run<TW, TSrc>(KernelPath path, float* x, int T, int K, TSrc src, int n0, int n1, float* y, int ldy)
        where TW : struct, IPanelWeights where TSrc : struct, IPanelSource
    {
        if (n0 % P != 0) throw new ArgumentException($"row start {n0} is not a multiple of {P}");
        switch (path)
        {
            case KernelPath.Vector512: Run512<TW, TSrc>(x, T, K, src, n0, n1, y, ldy); break;
            case KernelPath.Vector256: Run256<TW, TSrc>(x, T, K, src, n0, n1, y, ldy); break;
            default: RunScalar<TW, TSrc>(x, T, K, src, n0, n1, y, ldy); break;
        }
    }

    private static int Pairs(int K) => (K + 1) / 2;

    // k-blocks of at most the source's block of pairs: [k0, k1) for k0 = 0, step, 2·step…
    private static int Step<TSrc>(TSrc src, int pairs) where TSrc : struct, IPanelSource => Math.Max(1, Math.Min(pairs, src.MaxPairs));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunScalar<TW, TSrc>(float* x, int T, int K, TSrc src, int n0, int n1, float* y, int ldy)
        where TW : struct, IPanelWeights where TSrc : struct, IPanelSource
    {
        int pairs = Pairs(K), step = Step(src, pairs);
        for (int p = n0; p < n1; p += P)
            for (int k0 = 0; k0 < pairs; k0 += step)
            {
                int k1 = Math.Min(pairs, k0 + step);
                byte* pw = src.Panel(p / P, k0, k1, 0);
                for (int n = p; n < Math.Min(n1, p + P); n++)
                    for (int t = 0; t < T; t++)
                    {
                        float acc = k0 == 0 ? 0 : y[(long)t * ldy + n];
                        for (int kk = k0; kk < k1; kk++)
                        {
                            byte* pair = pw + (long)kk * TW.PairBytes;
                            acc += TW.Get(pair, n - p, 0) * x[(long)t * K + 2 * kk];
                            if (2 * kk + 1 < K) acc += TW.Get(pair, n - p, 1) * x[(long)t * K + 2 * kk + 1];
                        }
                        y[(long)t * ldy + n] = acc;
                    }
            }
    }

    // ---- AVX2: two panels at a time, over K in blocks, tokens in tiles of 4 (a panel each) and 1 (both panels) ----
    private const int KBlock256 = 256; // column pairs per k-block: two bf16 panels' block is 32 KB, an L1's worth

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256<TW, TSrc>(float* x, int T, int K, TSrc src, int n0, int n1, float* y, int ldy)
        where TW : struct, IPanelWeights where TSrc : struct, IPanelSource
    {
        int pairs = K >> 1, allPairs = Math.Max(pairs, 1);
        for (int p = n0; p < n1; p += 2 * P)
        {
            bool two = p + P < n1;
            int valid0 = Math.Min(P, n1 - p), valid1 = two ? Math.Min(P, n1 - p - P) : 0;
            // ragged panels go over K in one pass (unless the source holds less), so their partial sums never wait in y
            int block = Math.Min(valid0 == P && valid1 == P && T > 1 ? KBlock256 : allPairs, src.MaxPairs);
            for (int k0 = 0; k0 < allPairs; k0 += block)
            {
                int k1 = Math.Min(pairs, k0 + block);
                int kEnd = k1 == pairs ? Pairs(K) : k1; // the odd column of an odd K rides with the last block
                byte* w0 = src.Panel(p / P, k0, kEnd, 0);
                byte* w1 = two ? src.Panel(p / P + 1, k0, kEnd, 1) : w0;
                // the first tile over a block reads it from memory, prefetching ahead; the others find it in cache
                bool stream = src.Streams;
                int t = 0;
                for (; t + 4 <= T; t += 4)
                {
                    float* xt = x + (long)t * K, yt = y + (long)t * ldy + p;
                    PanelTiles256.Tile4<TW>(xt, K, w0, yt, ldy, valid0, k0, k1, stream && t == 0);
                    if (two) PanelTiles256.Tile4<TW>(xt, K, w1, yt + P, ldy, valid1, k0, k1, stream && t == 0);
                }
                for (; t < T; t++) PanelTiles256.Tile1<TW>(x + (long)t * K, K, w0, w1, y + (long)t * ldy + p, valid0, valid1, k0, k1, stream && t == 0);
            }
        }
    }

    // ---- AVX-512: the tiles are in PanelTiles512 ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run512<TW, TSrc>(float* x, int T, int K, TSrc src, int n0, int n1, float* y, int ldy)
        where TW : struct, IPanelWeights where TSrc : struct, IPanelSource
    {
        int t12 = T / 12 * 12, t8 = t12 + (T - t12) / 8 * 8, t4 = t8 + (T - t8) / 4 * 4, pairs = K >> 1, allPairs = Math.Max(pairs, 1);
        byte* spillBytes = stackalloc byte[PanelTiles512.SpillBytes + 64];
        float* spill = (float*)(((nint)spillBytes + 63) & ~(nint)63);
        int most = src.MaxPairs;
        // tokens in blocks, so one block's activations for a k-block (8 × 48 KB) stay in L2 across all the panels; every
        // block but the last is whole 12-token tiles. A source that makes its panels (dequantizing) makes each once: all
        // tokens in one block, whose activations for its smaller k-block stay in L2 up to ~1000 tokens.
        int tBlock = src.Streams ? TBlock : Math.Max(TBlock, (T + 11) / 12 * 12);
        int t16 = Start16(T, t12, t8, t4, tBlock);
        float* xp = t4 > 0 ? TokenTiles.Pack(x, K, t12, t8, t4, t16) : null;
        for (int tb = 0; tb < T; tb += tBlock)
        {
            int tEnd = Math.Min(T, tb + tBlock);
            bool oneTile = OneTile(tb, tEnd, t12, t8, t4, t16);
            for (int p = n0; p < n1; p += 2 * P)
            {
                bool two = p + P < n1;
                int valid0 = Math.Min(P, n1 - p), valid1 = two ? Math.Min(P, n1 - p - P) : 0;
                // full panels go over K in blocks, every token tile per block, so the first tile reads a block of weights
                // from memory (prefetching ahead) and the others find it in cache; a token block that is one tile has
                // nothing to share a block with, so it goes over K in one pass (unless the source holds less)
                int block = Math.Min(valid0 == P && valid1 == P && !oneTile ? KBlock : allPairs, most);
                float* yk = y + p;
                for (int k0 = 0; k0 < allPairs; k0 += block)
                {
                    int k1 = Math.Min(pairs, k0 + block);
                    int kEnd = k1 == pairs ? Pairs(K) : k1; // the odd column of an odd K rides with the last block
                    byte* w0 = src.Panel(p / P, k0, kEnd, 0);
                    byte* w1 = two ? src.Panel(p / P + 1, k0, kEnd, 1) : w0; // a lone last panel is computed twice, stored once
                    bool stream = src.Streams;
                    int t = tb;
                    for (; t < Math.Min(t12, tEnd); t += 12)
                    {
                        if (t == t16)
                        {
                            PanelTiles512.Tile16<TW>(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, spill, stream && t == tb);
                            t += 4;
                        }
                        else PanelTiles512.Tile12<TW>(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, stream && t == tb);
                    }
                    if (t < t8 && t < tEnd) { PanelTiles512.Tile8<TW>(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, stream && t == tb); t += 8; }
                    if (t < t4 && t < tEnd) { PanelTiles512.Tile4<TW>(xp + (long)t * K, K, w0, w1, yk + (long)t * ldy, ldy, valid0, valid1, k0, k1, stream && t == tb); t += 4; }
                    for (; t < tEnd; t++) PanelTiles512.Tile1<TW>(x + (long)t * K, K, w0, w1, yk + (long)t * ldy, valid0, valid1, k0, k1, stream && t == tb);
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
    private static int Start16(int T, int t12, int t8, int t4, int tBlock) =>
        t8 == t12 && t4 == t12 + 4 && t12 - 12 >= (T - 1) / tBlock * tBlock ? t12 - 12 : -1;
}
