using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors.Panels;

/// <summary>
/// AVX-512 register tiles of <see cref="PanelGemm"/>, for any panel element type (<see cref="IPanelWeights"/>): weights are
/// panels <c>[ceil(K/2)][16][2]</c> (16 rows × columns k, k+1 per column pair), which <c>TW</c> loads as two f32
/// vectors — bf16 with one shift (even column) and one AND (odd column) from one 64-byte line, f32 as two lines.
/// Each tile covers the column pairs [pair0, pair1) of a k-block; a later block
/// (pair0 &gt; 0) resumes from the partial sums it stored in <c>y</c>, which are exact, so every output's
/// order of accumulation — one chain, column pairs in order, even column then odd — is the same for
/// every tile and every batch: a token's logits do not depend on the batch it runs in.
/// </summary>
internal static unsafe partial class PanelTiles512
{
    private const int P = WeightMatrix.Panel;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(Vector512<float> v, float* dst, int valid)
    {
        if (valid == P) v.Store(dst);
        else for (int i = 0; i < valid; i++) dst[i] = v.GetElement(i);
    }

    // The tiles below, by prefetch policy: the first tile over a block of weights reads it from memory and prefetches
    // ahead (PrefetchAhead); later tiles find it in cache (NoPrefetch). Each entry takes the same arguments as its tile.

    /// <summary>12-token tile; <paramref name="first"/>: the first pass over this block of weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile12<TW>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile12<TW, PrefetchAhead>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
        else Tile12<TW, NoPrefetch>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
    }

    /// <summary>8-token tile; <paramref name="first"/>: the first pass over this block of weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile8<TW>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile8<TW, PrefetchAhead>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
        else Tile8<TW, NoPrefetch>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
    }

    /// <summary>4-token tile; <paramref name="first"/>: the first pass over this block of weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile4<TW>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile4<TW, PrefetchAhead>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
        else Tile4<TW, NoPrefetch>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1);
    }

    /// <summary>1-token tile; <paramref name="first"/>: the first pass over this block of weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile1<TW>(float* x, int K, byte* w0, byte* w1, float* y, int v0, int v1, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile1<TW, PrefetchAhead>(x, K, w0, w1, y, v0, v1, pair0, pair1);
        else Tile1<TW, NoPrefetch>(x, K, w0, w1, y, v0, v1, pair0, pair1);
    }

    /// <summary>
    /// 8 tokens × two panels: 16 accumulators; per column pair two weight loads, four widening ops, 16 broadcasts
    /// (each used by both panels) and 32 FMAs, activations from <paramref name="xp"/> <c>[K][8]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8<TW, TPrefetch>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
        if (pair0 == 0)
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = default;
        }
        else
        {
            float* z = y + P;
            a0 = Vector512.Load(y); a1 = Vector512.Load(y + ldy); a2 = Vector512.Load(y + 2L * ldy); a3 = Vector512.Load(y + 3L * ldy);
            a4 = Vector512.Load(y + 4L * ldy); a5 = Vector512.Load(y + 5L * ldy); a6 = Vector512.Load(y + 6L * ldy); a7 = Vector512.Load(y + 7L * ldy);
            b0 = Vector512.Load(z); b1 = Vector512.Load(z + ldy); b2 = Vector512.Load(z + 2L * ldy); b3 = Vector512.Load(z + 3L * ldy);
            b4 = Vector512.Load(z + 4L * ldy); b5 = Vector512.Load(z + 5L * ldy); b6 = Vector512.Load(z + 6L * ldy); b7 = Vector512.Load(z + 7L * ldy);
        }
        var mask = Vector512.Create(0xFFFF0000u);
        xp += (long)pair0 * 16;
        byte* end = w1 + (long)pair1 * TW.PairBytes;
        w0 += (long)pair0 * TW.PairBytes;
        w1 += (long)pair0 * TW.PairBytes;
        for (; w1 < end; w0 += TW.PairBytes, w1 += TW.PairBytes, xp += 16)
        {
            TPrefetch.Ahead(w0, 0);
            TPrefetch.Ahead(w1, 0);
            TW.Load(w0, mask, out var e0, out var f0);
            TW.Load(w1, mask, out var e1, out var f1);
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
            var e0 = TW.LoadEven(w0);
            var e1 = TW.LoadEven(w1);
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

    /// <summary>
    /// 4 tokens × two panels: 8 accumulators; per column pair two weight loads, four widening ops, 8 broadcasts and
    /// 16 FMAs, activations from <paramref name="xp"/> <c>[K][4]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4<TW, TPrefetch>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector512<float> a0, a1, a2, a3, b0, b1, b2, b3;
        if (pair0 == 0)
        {
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = default;
        }
        else
        {
            float* z = y + P;
            a0 = Vector512.Load(y); a1 = Vector512.Load(y + ldy); a2 = Vector512.Load(y + 2L * ldy); a3 = Vector512.Load(y + 3L * ldy);
            b0 = Vector512.Load(z); b1 = Vector512.Load(z + ldy); b2 = Vector512.Load(z + 2L * ldy); b3 = Vector512.Load(z + 3L * ldy);
        }
        var mask = Vector512.Create(0xFFFF0000u);
        xp += (long)pair0 * 8;
        byte* end = w1 + (long)pair1 * TW.PairBytes;
        w0 += (long)pair0 * TW.PairBytes;
        w1 += (long)pair0 * TW.PairBytes;
        // four column pairs per iteration, as in Tile12, then the rest one at a time, in order
        for (; w1 + 3 * TW.PairBytes < end; w0 += 4 * TW.PairBytes, w1 += 4 * TW.PairBytes, xp += 32)
        {
            TPrefetch.Ahead(w0, 0 * TW.PairBytes);
            TPrefetch.Ahead(w1, 0 * TW.PairBytes);
            Pair4<TW>(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, mask, w0, w1, xp, 0);
            TPrefetch.Ahead(w0, 1 * TW.PairBytes);
            TPrefetch.Ahead(w1, 1 * TW.PairBytes);
            Pair4<TW>(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, mask, w0, w1, xp, 1);
            TPrefetch.Ahead(w0, 2 * TW.PairBytes);
            TPrefetch.Ahead(w1, 2 * TW.PairBytes);
            Pair4<TW>(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, mask, w0, w1, xp, 2);
            TPrefetch.Ahead(w0, 3 * TW.PairBytes);
            TPrefetch.Ahead(w1, 3 * TW.PairBytes);
            Pair4<TW>(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, mask, w0, w1, xp, 3);
        }
        for (; w1 < end; w0 += TW.PairBytes, w1 += TW.PairBytes, xp += 8)
        {
            TPrefetch.Ahead(w0, 0);
            TPrefetch.Ahead(w1, 0);
            Pair4<TW>(ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, mask, w0, w1, xp, 0);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            var e0 = TW.LoadEven(w0);
            var e1 = TW.LoadEven(w1);
            a0 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[0]), a0); b0 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[0]), b0);
            a1 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[1]), a1); b1 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[1]), b1);
            a2 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[2]), a2); b2 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[2]), b2);
            a3 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[3]), a3); b3 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[3]), b3);
        }
        Put(a0, y, v0); Put(a1, y + ldy, v0); Put(a2, y + 2L * ldy, v0); Put(a3, y + 3L * ldy, v0);
        if (v1 == 0) return;
        y += P;
        Put(b0, y, v1); Put(b1, y + ldy, v1); Put(b2, y + 2L * ldy, v1); Put(b3, y + 3L * ldy, v1);
    }

    /// <summary>One column pair (the <paramref name="i"/>-th from <paramref name="w0"/>) of <see cref="Tile4{TW, TPrefetch}"/> (its caller prefetches).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair4<TW>(
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3,
        ref Vector512<float> b0, ref Vector512<float> b1, ref Vector512<float> b2, ref Vector512<float> b3,
        Vector512<uint> mask, byte* w0, byte* w1, float* xp, int i)
        where TW : struct, IPanelWeights
    {
        // offsets inside the subscripts, not added to the pointers, so the JIT folds each into its address
        TW.Load(w0 + i * TW.PairBytes, mask, out var e0, out var f0);
        TW.Load(w1 + i * TW.PairBytes, mask, out var e1, out var f1);
        Vector512<float> c, d;
        c = Vector512.Create(xp[i * 8 + 0]); d = Vector512.Create(xp[i * 8 + 4]);
        a0 = Vector512.FusedMultiplyAdd(e0, c, a0); b0 = Vector512.FusedMultiplyAdd(e1, c, b0); a0 = Vector512.FusedMultiplyAdd(f0, d, a0); b0 = Vector512.FusedMultiplyAdd(f1, d, b0);
        c = Vector512.Create(xp[i * 8 + 1]); d = Vector512.Create(xp[i * 8 + 5]);
        a1 = Vector512.FusedMultiplyAdd(e0, c, a1); b1 = Vector512.FusedMultiplyAdd(e1, c, b1); a1 = Vector512.FusedMultiplyAdd(f0, d, a1); b1 = Vector512.FusedMultiplyAdd(f1, d, b1);
        c = Vector512.Create(xp[i * 8 + 2]); d = Vector512.Create(xp[i * 8 + 6]);
        a2 = Vector512.FusedMultiplyAdd(e0, c, a2); b2 = Vector512.FusedMultiplyAdd(e1, c, b2); a2 = Vector512.FusedMultiplyAdd(f0, d, a2); b2 = Vector512.FusedMultiplyAdd(f1, d, b2);
        c = Vector512.Create(xp[i * 8 + 3]); d = Vector512.Create(xp[i * 8 + 7]);
        a3 = Vector512.FusedMultiplyAdd(e0, c, a3); b3 = Vector512.FusedMultiplyAdd(e1, c, b3); a3 = Vector512.FusedMultiplyAdd(f0, d, a3); b3 = Vector512.FusedMultiplyAdd(f1, d, b3);
    }

    /// <summary>One token × two panels: the decode path, bound by the weight stream.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1<TW, TPrefetch>(float* x, int K, byte* w0, byte* w1, float* y, int v0, int v1, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector512<float> a0 = default, b0 = default;
        if (pair0 > 0)
        {
            a0 = Vector512.Load(y);
            b0 = Vector512.Load(y + P);
        }
        var mask = Vector512.Create(0xFFFF0000u);
        for (int kk = pair0; kk < pair1; kk++)
        {
            byte* p0 = w0 + (long)kk * TW.PairBytes, p1 = w1 + (long)kk * TW.PairBytes;
            TPrefetch.Ahead(p0, 0);
            TPrefetch.Ahead(p1, 0);
            TW.Load(p0, mask, out var e0, out var f0);
            TW.Load(p1, mask, out var e1, out var f1);
            a0 = F(e0, f0, x + 2 * kk, a0);
            b0 = F(e1, f1, x + 2 * kk, b0);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            var xv = Vector512.Create(x[K - 1]);
            a0 = Vector512.FusedMultiplyAdd(TW.LoadEven(w0 + (long)pair1 * TW.PairBytes), xv, a0);
            b0 = Vector512.FusedMultiplyAdd(TW.LoadEven(w1 + (long)pair1 * TW.PairBytes), xv, b0);
        }
        Put(a0, y, v0);
        if (v1 > 0) Put(b0, y + P, v1);
    }


    /// <summary>
    /// 12 tokens × two panels: 24 accumulators; per column pair two weight loads, four widening ops and 48 FMAs,
    /// activations from <paramref name="xp"/> <c>[K][12]</c>. Tokens 0–5 broadcast into registers, each used by both
    /// panels; tokens 6–11 broadcast inside their FMAs (a load each, but no separate instruction). That is 38 loads and
    /// 78 instructions (12 fewer than with every broadcast separate) per 52 p0/p5 operations: the load ports keep
    /// room for cache misses, and a core shared with another thread (SMT) decodes fewer instructions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile12<TW, TPrefetch>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11;
        if (pair0 == 0)
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = b10 = b11 = default;
        }
        else
        {
            a0 = Vector512.Load(y + 0L * ldy); b0 = Vector512.Load(y + 0L * ldy + P);
            a1 = Vector512.Load(y + 1L * ldy); b1 = Vector512.Load(y + 1L * ldy + P);
            a2 = Vector512.Load(y + 2L * ldy); b2 = Vector512.Load(y + 2L * ldy + P);
            a3 = Vector512.Load(y + 3L * ldy); b3 = Vector512.Load(y + 3L * ldy + P);
            a4 = Vector512.Load(y + 4L * ldy); b4 = Vector512.Load(y + 4L * ldy + P);
            a5 = Vector512.Load(y + 5L * ldy); b5 = Vector512.Load(y + 5L * ldy + P);
            a6 = Vector512.Load(y + 6L * ldy); b6 = Vector512.Load(y + 6L * ldy + P);
            a7 = Vector512.Load(y + 7L * ldy); b7 = Vector512.Load(y + 7L * ldy + P);
            a8 = Vector512.Load(y + 8L * ldy); b8 = Vector512.Load(y + 8L * ldy + P);
            a9 = Vector512.Load(y + 9L * ldy); b9 = Vector512.Load(y + 9L * ldy + P);
            a10 = Vector512.Load(y + 10L * ldy); b10 = Vector512.Load(y + 10L * ldy + P);
            a11 = Vector512.Load(y + 11L * ldy); b11 = Vector512.Load(y + 11L * ldy + P);
        }
        var mask = Vector512.Create(0xFFFF0000u);
        xp += (long)pair0 * 24;
        byte* end = w1 + (long)pair1 * TW.PairBytes;
        w0 += (long)pair0 * TW.PairBytes;
        w1 += (long)pair0 * TW.PairBytes;
        float* xq = xp; // tokens 6–11 broadcast inside their FMAs (a second pointer, so the two loads stay two)
        // four column pairs per iteration (a quarter of the loop's counter updates and branches: at T = 16 the core's
        // 4-wide front end, not the FMA ports, is what runs out first), then the rest one at a time, in order
        for (; w1 + 3 * TW.PairBytes < end; w0 += 4 * TW.PairBytes, w1 += 4 * TW.PairBytes, xp += 96, xq += 96)
        {
            TPrefetch.Ahead(w0, 0 * TW.PairBytes);
            TPrefetch.Ahead(w1, 0 * TW.PairBytes);
            Pair12<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, mask, w0, w1, xp, xq, 0);
            TPrefetch.Ahead(w0, 1 * TW.PairBytes);
            TPrefetch.Ahead(w1, 1 * TW.PairBytes);
            Pair12<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, mask, w0, w1, xp, xq, 1);
            TPrefetch.Ahead(w0, 2 * TW.PairBytes);
            TPrefetch.Ahead(w1, 2 * TW.PairBytes);
            Pair12<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, mask, w0, w1, xp, xq, 2);
            TPrefetch.Ahead(w0, 3 * TW.PairBytes);
            TPrefetch.Ahead(w1, 3 * TW.PairBytes);
            Pair12<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, mask, w0, w1, xp, xq, 3);
        }
        for (; w1 < end; w0 += TW.PairBytes, w1 += TW.PairBytes, xp += 24, xq += 24)
        {
            TPrefetch.Ahead(w0, 0);
            TPrefetch.Ahead(w1, 0);
            Pair12<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11, mask, w0, w1, xp, xq, 0);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            var e0 = TW.LoadEven(w0);
            var e1 = TW.LoadEven(w1);
            a0 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[0]), a0); b0 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[0]), b0);
            a1 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[1]), a1); b1 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[1]), b1);
            a2 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[2]), a2); b2 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[2]), b2);
            a3 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[3]), a3); b3 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[3]), b3);
            a4 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[4]), a4); b4 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[4]), b4);
            a5 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[5]), a5); b5 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[5]), b5);
            a6 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[6]), a6); b6 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[6]), b6);
            a7 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[7]), a7); b7 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[7]), b7);
            a8 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[8]), a8); b8 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[8]), b8);
            a9 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[9]), a9); b9 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[9]), b9);
            a10 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[10]), a10); b10 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[10]), b10);
            a11 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[11]), a11); b11 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xp[11]), b11);
        }
        Put(a0, y + 0L * ldy, v0);
        Put(a1, y + 1L * ldy, v0);
        Put(a2, y + 2L * ldy, v0);
        Put(a3, y + 3L * ldy, v0);
        Put(a4, y + 4L * ldy, v0);
        Put(a5, y + 5L * ldy, v0);
        Put(a6, y + 6L * ldy, v0);
        Put(a7, y + 7L * ldy, v0);
        Put(a8, y + 8L * ldy, v0);
        Put(a9, y + 9L * ldy, v0);
        Put(a10, y + 10L * ldy, v0);
        Put(a11, y + 11L * ldy, v0);
        if (v1 == 0) return;
        y += P;
        Put(b0, y + 0L * ldy, v1);
        Put(b1, y + 1L * ldy, v1);
        Put(b2, y + 2L * ldy, v1);
        Put(b3, y + 3L * ldy, v1);
        Put(b4, y + 4L * ldy, v1);
        Put(b5, y + 5L * ldy, v1);
        Put(b6, y + 6L * ldy, v1);
        Put(b7, y + 7L * ldy, v1);
        Put(b8, y + 8L * ldy, v1);
        Put(b9, y + 9L * ldy, v1);
        Put(b10, y + 10L * ldy, v1);
        Put(b11, y + 11L * ldy, v1);
    }

    /// <summary>One column pair (the <paramref name="i"/>-th from <paramref name="w0"/>) of <see cref="Tile12{TW, TPrefetch}"/> (its caller prefetches).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair12<TW>(
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3, ref Vector512<float> a4, ref Vector512<float> a5,
        ref Vector512<float> a6, ref Vector512<float> a7, ref Vector512<float> a8, ref Vector512<float> a9, ref Vector512<float> a10, ref Vector512<float> a11,
        ref Vector512<float> b0, ref Vector512<float> b1, ref Vector512<float> b2, ref Vector512<float> b3, ref Vector512<float> b4, ref Vector512<float> b5,
        ref Vector512<float> b6, ref Vector512<float> b7, ref Vector512<float> b8, ref Vector512<float> b9, ref Vector512<float> b10, ref Vector512<float> b11,
        Vector512<uint> mask, byte* w0, byte* w1, float* xp, float* xq, int i)
        where TW : struct, IPanelWeights
    {
        // offsets inside the subscripts, not added to the pointers, so the JIT folds each into its address
        TW.Load(w0 + i * TW.PairBytes, mask, out var e0, out var f0);
        TW.Load(w1 + i * TW.PairBytes, mask, out var e1, out var f1);
        Vector512<float> c, d;
        c = Vector512.Create(xp[i * 24 + 0]); d = Vector512.Create(xp[i * 24 + 12]);
        a0 = Vector512.FusedMultiplyAdd(e0, c, a0); b0 = Vector512.FusedMultiplyAdd(e1, c, b0); a0 = Vector512.FusedMultiplyAdd(f0, d, a0); b0 = Vector512.FusedMultiplyAdd(f1, d, b0);
        c = Vector512.Create(xp[i * 24 + 1]); d = Vector512.Create(xp[i * 24 + 13]);
        a1 = Vector512.FusedMultiplyAdd(e0, c, a1); b1 = Vector512.FusedMultiplyAdd(e1, c, b1); a1 = Vector512.FusedMultiplyAdd(f0, d, a1); b1 = Vector512.FusedMultiplyAdd(f1, d, b1);
        c = Vector512.Create(xp[i * 24 + 2]); d = Vector512.Create(xp[i * 24 + 14]);
        a2 = Vector512.FusedMultiplyAdd(e0, c, a2); b2 = Vector512.FusedMultiplyAdd(e1, c, b2); a2 = Vector512.FusedMultiplyAdd(f0, d, a2); b2 = Vector512.FusedMultiplyAdd(f1, d, b2);
        c = Vector512.Create(xp[i * 24 + 3]); d = Vector512.Create(xp[i * 24 + 15]);
        a3 = Vector512.FusedMultiplyAdd(e0, c, a3); b3 = Vector512.FusedMultiplyAdd(e1, c, b3); a3 = Vector512.FusedMultiplyAdd(f0, d, a3); b3 = Vector512.FusedMultiplyAdd(f1, d, b3);
        c = Vector512.Create(xp[i * 24 + 4]); d = Vector512.Create(xp[i * 24 + 16]);
        a4 = Vector512.FusedMultiplyAdd(e0, c, a4); b4 = Vector512.FusedMultiplyAdd(e1, c, b4); a4 = Vector512.FusedMultiplyAdd(f0, d, a4); b4 = Vector512.FusedMultiplyAdd(f1, d, b4);
        c = Vector512.Create(xp[i * 24 + 5]); d = Vector512.Create(xp[i * 24 + 17]);
        a5 = Vector512.FusedMultiplyAdd(e0, c, a5); b5 = Vector512.FusedMultiplyAdd(e1, c, b5); a5 = Vector512.FusedMultiplyAdd(f0, d, a5); b5 = Vector512.FusedMultiplyAdd(f1, d, b5);
        a6 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 6]), a6); b6 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 6]), b6); a6 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 18]), a6); b6 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 18]), b6);
        a7 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 7]), a7); b7 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 7]), b7); a7 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 19]), a7); b7 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 19]), b7);
        a8 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 8]), a8); b8 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 8]), b8); a8 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 20]), a8); b8 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 20]), b8);
        a9 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 9]), a9); b9 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 9]), b9); a9 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 21]), a9); b9 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 21]), b9);
        a10 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 10]), a10); b10 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 10]), b10); a10 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 22]), a10); b10 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 22]), b10);
        a11 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 24 + 11]), a11); b11 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 24 + 11]), b11); a11 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 24 + 23]), a11); b11 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 24 + 23]), b11);
    }

    // a token's even column, then its odd column
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> F(Vector512<float> e, Vector512<float> f, float* x, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(f, Vector512.Create(x[1]), Vector512.FusedMultiplyAdd(e, Vector512.Create(x[0]), acc));
}
