using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

internal static unsafe partial class PanelTiles512
{
    /// <summary>Bytes of the 64-byte-aligned scratch <see cref="Tile16{TW}(float*, int, byte*, byte*, float*, int, int, int, int, int, float*, bool)"/> keeps tokens 12–15's accumulators (and its widening mask) in.</summary>
    public const int SpillBytes = 9 * P * sizeof(float);

    /// <summary>16-token tile; <paramref name="first"/>: the first pass over this block of weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile16<TW>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1, float* spill, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile16<TW, PrefetchAhead>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1, spill);
        else Tile16<TW, NoPrefetch>(xp, K, w0, w1, y, ldy, v0, v1, pair0, pair1, spill);
    }

    /// <summary>
    /// 16 tokens × two panels in one pass, activations from <paramref name="xp"/> <c>[K][16]</c>. Tokens 0–11 accumulate in
    /// 24 registers; the register file has no room for tokens 12–15, so their 8 accumulators live in
    /// <paramref name="spill"/> <c>[2 panels][4 tokens][16]</c> (L1, followed by the widening mask), each loaded, updated by its two FMAs and stored back per
    /// column pair. Against a 12-token pass plus a 4-token pass this widens each weight once instead of twice (68 instead of
    /// 72 p0/p5 operations per 64 FMAs) and streams the weights at one even rate instead of all in the first pass.
    /// Same chain per output as every tile (column pairs in order, even column then odd), so results are bitwise those
    /// of the 12- and 4-token tiles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile16<TW, TPrefetch>(float* xp, int K, byte* w0, byte* w1, float* y, int ldy, int v0, int v1, int pair0, int pair1, float* spill)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11;
        if (pair0 == 0)
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = b9 = b10 = b11 = default;
            for (int j = 0; j < 8; j++) Vector512<float>.Zero.Store(spill + j * P);
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
            for (int j = 0; j < 4; j++)
            {
                Vector512.Load(y + (12L + j) * ldy).Store(spill + j * P);
                Vector512.Load(y + (12L + j) * ldy + P).Store(spill + (4 + j) * P);
            }
        }
        // the mask is read from L1 at each use: all 32 vector registers are taken inside the loop
        uint* mask = (uint*)(spill + 8 * P);
        Vector512.Create(0xFFFF0000u).Store(mask);
        xp += (long)pair0 * 32;
        byte* end = w1 + (long)pair1 * TW.PairBytes;
        w0 += (long)pair0 * TW.PairBytes;
        w1 += (long)pair0 * TW.PairBytes;
        float* xq = xp; // tokens 10–11 broadcast inside their FMAs (a second pointer, so the two loads stay two)
        for (; w1 + 3 * TW.PairBytes < end; w0 += 4 * TW.PairBytes, w1 += 4 * TW.PairBytes, xp += 128, xq += 128)
        {
            TPrefetch.Ahead(w0, 0 * TW.PairBytes);
            TPrefetch.Ahead(w1, 0 * TW.PairBytes);
            Pair16<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11,
                mask, w0, w1, xp, xq, spill, 0);
            TPrefetch.Ahead(w0, 1 * TW.PairBytes);
            TPrefetch.Ahead(w1, 1 * TW.PairBytes);
            Pair16<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11,
                mask, w0, w1, xp, xq, spill, 1);
            TPrefetch.Ahead(w0, 2 * TW.PairBytes);
            TPrefetch.Ahead(w1, 2 * TW.PairBytes);
            Pair16<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11,
                mask, w0, w1, xp, xq, spill, 2);
            TPrefetch.Ahead(w0, 3 * TW.PairBytes);
            TPrefetch.Ahead(w1, 3 * TW.PairBytes);
            Pair16<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11,
                mask, w0, w1, xp, xq, spill, 3);
        }
        for (; w1 < end; w0 += TW.PairBytes, w1 += TW.PairBytes, xp += 32, xq += 32)
        {
            TPrefetch.Ahead(w0, 0);
            TPrefetch.Ahead(w1, 0);
            Pair16<TW>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, ref a8, ref a9, ref a10, ref a11,
                ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, ref b8, ref b9, ref b10, ref b11,
                mask, w0, w1, xp, xq, spill, 0);
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
            for (int j = 0; j < 4; j++)
            {
                var c = Vector512.Create(xp[12 + j]);
                Vector512.FusedMultiplyAdd(e0, c, Vector512.Load(spill + j * P)).Store(spill + j * P);
                Vector512.FusedMultiplyAdd(e1, c, Vector512.Load(spill + (4 + j) * P)).Store(spill + (4 + j) * P);
            }
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
        for (int j = 0; j < 4; j++) Put(Vector512.Load(spill + j * P), y + (12L + j) * ldy, v0);
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
        for (int j = 0; j < 4; j++) Put(Vector512.Load(spill + (4 + j) * P), y + (12L + j) * ldy, v1);
    }

    /// <summary>One column pair (the <paramref name="i"/>-th from <paramref name="w0"/>) of <see cref="Tile16{TW, TPrefetch}"/> (its caller prefetches).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair16<TW>(
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3, ref Vector512<float> a4, ref Vector512<float> a5,
        ref Vector512<float> a6, ref Vector512<float> a7, ref Vector512<float> a8, ref Vector512<float> a9, ref Vector512<float> a10, ref Vector512<float> a11,
        ref Vector512<float> b0, ref Vector512<float> b1, ref Vector512<float> b2, ref Vector512<float> b3, ref Vector512<float> b4, ref Vector512<float> b5,
        ref Vector512<float> b6, ref Vector512<float> b7, ref Vector512<float> b8, ref Vector512<float> b9, ref Vector512<float> b10, ref Vector512<float> b11,
        uint* mask, byte* w0, byte* w1, float* xp, float* xq, float* spill, int i)
        where TW : struct, IPanelWeights
    {
        // offsets inside the subscripts, not added to the pointers, so the JIT folds each into its address
        var m = Vector512.Load(mask);
        TW.Load(w0 + i * TW.PairBytes, m, out var e0, out var f0);
        TW.Load(w1 + i * TW.PairBytes, m, out var e1, out var f1);
        Vector512<float> c, d, s;
        // the spilled tokens between the others, so their loads and stores spread over the pair
        c = Vector512.Create(xp[i * 32 + 0]); d = Vector512.Create(xp[i * 32 + 16]);
        a0 = Vector512.FusedMultiplyAdd(e0, c, a0); b0 = Vector512.FusedMultiplyAdd(e1, c, b0); a0 = Vector512.FusedMultiplyAdd(f0, d, a0); b0 = Vector512.FusedMultiplyAdd(f1, d, b0);
        c = Vector512.Create(xp[i * 32 + 1]); d = Vector512.Create(xp[i * 32 + 17]);
        a1 = Vector512.FusedMultiplyAdd(e0, c, a1); b1 = Vector512.FusedMultiplyAdd(e1, c, b1); a1 = Vector512.FusedMultiplyAdd(f0, d, a1); b1 = Vector512.FusedMultiplyAdd(f1, d, b1);
        c = Vector512.Create(xp[i * 32 + 2]); d = Vector512.Create(xp[i * 32 + 18]);
        a2 = Vector512.FusedMultiplyAdd(e0, c, a2); b2 = Vector512.FusedMultiplyAdd(e1, c, b2); a2 = Vector512.FusedMultiplyAdd(f0, d, a2); b2 = Vector512.FusedMultiplyAdd(f1, d, b2);
        c = Vector512.Create(xp[i * 32 + 12]); d = Vector512.Create(xp[i * 32 + 28]);
        s = Vector512.Load(spill + 0 * P); s = Vector512.FusedMultiplyAdd(e0, c, s); s = Vector512.FusedMultiplyAdd(f0, d, s); s.Store(spill + 0 * P);
        s = Vector512.Load(spill + 4 * P); s = Vector512.FusedMultiplyAdd(e1, c, s); s = Vector512.FusedMultiplyAdd(f1, d, s); s.Store(spill + 4 * P);
        c = Vector512.Create(xp[i * 32 + 3]); d = Vector512.Create(xp[i * 32 + 19]);
        a3 = Vector512.FusedMultiplyAdd(e0, c, a3); b3 = Vector512.FusedMultiplyAdd(e1, c, b3); a3 = Vector512.FusedMultiplyAdd(f0, d, a3); b3 = Vector512.FusedMultiplyAdd(f1, d, b3);
        c = Vector512.Create(xp[i * 32 + 4]); d = Vector512.Create(xp[i * 32 + 20]);
        a4 = Vector512.FusedMultiplyAdd(e0, c, a4); b4 = Vector512.FusedMultiplyAdd(e1, c, b4); a4 = Vector512.FusedMultiplyAdd(f0, d, a4); b4 = Vector512.FusedMultiplyAdd(f1, d, b4);
        c = Vector512.Create(xp[i * 32 + 5]); d = Vector512.Create(xp[i * 32 + 21]);
        a5 = Vector512.FusedMultiplyAdd(e0, c, a5); b5 = Vector512.FusedMultiplyAdd(e1, c, b5); a5 = Vector512.FusedMultiplyAdd(f0, d, a5); b5 = Vector512.FusedMultiplyAdd(f1, d, b5);
        c = Vector512.Create(xp[i * 32 + 13]); d = Vector512.Create(xp[i * 32 + 29]);
        s = Vector512.Load(spill + 1 * P); s = Vector512.FusedMultiplyAdd(e0, c, s); s = Vector512.FusedMultiplyAdd(f0, d, s); s.Store(spill + 1 * P);
        s = Vector512.Load(spill + 5 * P); s = Vector512.FusedMultiplyAdd(e1, c, s); s = Vector512.FusedMultiplyAdd(f1, d, s); s.Store(spill + 5 * P);
        c = Vector512.Create(xp[i * 32 + 6]); d = Vector512.Create(xp[i * 32 + 22]);
        a6 = Vector512.FusedMultiplyAdd(e0, c, a6); b6 = Vector512.FusedMultiplyAdd(e1, c, b6); a6 = Vector512.FusedMultiplyAdd(f0, d, a6); b6 = Vector512.FusedMultiplyAdd(f1, d, b6);
        c = Vector512.Create(xp[i * 32 + 7]); d = Vector512.Create(xp[i * 32 + 23]);
        a7 = Vector512.FusedMultiplyAdd(e0, c, a7); b7 = Vector512.FusedMultiplyAdd(e1, c, b7); a7 = Vector512.FusedMultiplyAdd(f0, d, a7); b7 = Vector512.FusedMultiplyAdd(f1, d, b7);
        c = Vector512.Create(xp[i * 32 + 8]); d = Vector512.Create(xp[i * 32 + 24]);
        a8 = Vector512.FusedMultiplyAdd(e0, c, a8); b8 = Vector512.FusedMultiplyAdd(e1, c, b8); a8 = Vector512.FusedMultiplyAdd(f0, d, a8); b8 = Vector512.FusedMultiplyAdd(f1, d, b8);
        c = Vector512.Create(xp[i * 32 + 14]); d = Vector512.Create(xp[i * 32 + 30]);
        s = Vector512.Load(spill + 2 * P); s = Vector512.FusedMultiplyAdd(e0, c, s); s = Vector512.FusedMultiplyAdd(f0, d, s); s.Store(spill + 2 * P);
        s = Vector512.Load(spill + 6 * P); s = Vector512.FusedMultiplyAdd(e1, c, s); s = Vector512.FusedMultiplyAdd(f1, d, s); s.Store(spill + 6 * P);
        c = Vector512.Create(xp[i * 32 + 9]); d = Vector512.Create(xp[i * 32 + 25]);
        a9 = Vector512.FusedMultiplyAdd(e0, c, a9); b9 = Vector512.FusedMultiplyAdd(e1, c, b9); a9 = Vector512.FusedMultiplyAdd(f0, d, a9); b9 = Vector512.FusedMultiplyAdd(f1, d, b9);
        a10 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 32 + 10]), a10); b10 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 32 + 10]), b10);
        a10 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 32 + 26]), a10); b10 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 32 + 26]), b10);
        a11 = Vector512.FusedMultiplyAdd(e0, Vector512.Create(xp[i * 32 + 11]), a11); b11 = Vector512.FusedMultiplyAdd(e1, Vector512.Create(xq[i * 32 + 11]), b11);
        a11 = Vector512.FusedMultiplyAdd(f0, Vector512.Create(xp[i * 32 + 27]), a11); b11 = Vector512.FusedMultiplyAdd(f1, Vector512.Create(xq[i * 32 + 27]), b11);
        c = Vector512.Create(xp[i * 32 + 15]); d = Vector512.Create(xp[i * 32 + 31]);
        s = Vector512.Load(spill + 3 * P); s = Vector512.FusedMultiplyAdd(e0, c, s); s = Vector512.FusedMultiplyAdd(f0, d, s); s.Store(spill + 3 * P);
        s = Vector512.Load(spill + 7 * P); s = Vector512.FusedMultiplyAdd(e1, c, s); s = Vector512.FusedMultiplyAdd(f1, d, s); s.Store(spill + 7 * P);
    }
}
