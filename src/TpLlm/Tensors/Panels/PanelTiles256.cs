using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

/// <summary>
/// <see cref="PanelGemm"/>'s register tiles on 256-bit vectors (AVX2, sixteen registers): a 16-row panel is two 8-row
/// halves. Every output accumulates in one chain, column pair by column pair (even column, then odd), as on the
/// 512-bit tiles: a token gets the same numbers in any tile, and the same as on AVX-512. Activations are read from
/// <c>x</c> <c>[T, K]</c> as they are; <c>y</c> is <c>[T, ldy]</c> and holds the sums of earlier k-blocks when pair0 &gt; 0.
/// </summary>
internal static unsafe class PanelTiles256
{
    private const int P = WeightMatrix.Panel;

    /// <summary>
    /// 4 tokens × one panel over pairs [<paramref name="pair0"/>, <paramref name="pair1"/>): 8 accumulators; per column
    /// pair two weight loads, four widening operations, eight broadcasts and 16 FMAs. Each accumulator's two FMAs a pair
    /// take the FMA latency that the other seven chains fill. <paramref name="first"/>: the first pass over this block of
    /// weights, which reads it from memory and prefetches ahead.
    /// </summary>
    public static void Tile4<TW>(float* x, int K, byte* w, float* y, int ldy, int valid, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile4<TW, PrefetchAhead>(x, K, w, y, ldy, valid, pair0, pair1);
        else Tile4<TW, NoPrefetch>(x, K, w, y, ldy, valid, pair0, pair1);
    }

    /// <summary>
    /// One token × two panels (<paramref name="w1"/> the second, <paramref name="valid1"/> = 0 when there is none): four
    /// chains, so a token alone (decode) keeps the FMAs busy enough to stream the weights. <paramref name="first"/>: the
    /// first pass over this block of weights, which reads it from memory and prefetches ahead.
    /// </summary>
    public static void Tile1<TW>(float* x, int K, byte* w0, byte* w1, float* y, int valid0, int valid1, int pair0, int pair1, bool first)
        where TW : struct, IPanelWeights
    {
        if (first) Tile1<TW, PrefetchAhead>(x, K, w0, w1, y, valid0, valid1, pair0, pair1);
        else Tile1<TW, NoPrefetch>(x, K, w0, w1, y, valid0, valid1, pair0, pair1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4<TW, TPrefetch>(float* x, int K, byte* w, float* y, int ldy, int valid, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        float* x1 = x + K, x2 = x1 + K, x3 = x2 + K;
        float* y1 = y + ldy, y2 = y1 + ldy, y3 = y2 + ldy;
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        if (pair0 > 0)
        {
            (a0, b0) = (Get(y, valid, 0), Get(y, valid, 1));
            (a1, b1) = (Get(y1, valid, 0), Get(y1, valid, 1));
            (a2, b2) = (Get(y2, valid, 0), Get(y2, valid, 1));
            (a3, b3) = (Get(y3, valid, 0), Get(y3, valid, 1));
        }
        for (int kk = pair0; kk < pair1; kk++)
        {
            byte* pair = w + (long)kk * TW.PairBytes;
            TPrefetch.Ahead(pair, 0);
            TW.Load(pair, 0, out var e0, out var f0);
            TW.Load(pair, 1, out var e1, out var f1);
            int c = 2 * kk;
            (a0, b0) = F(e0, f0, e1, f1, x + c, a0, b0);
            (a1, b1) = F(e0, f0, e1, f1, x1 + c, a1, b1);
            (a2, b2) = F(e0, f0, e1, f1, x2 + c, a2, b2);
            (a3, b3) = F(e0, f0, e1, f1, x3 + c, a3, b3);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            // the odd K's last column rides alone: its pair's odd half is not a column
            TW.Load(w + (long)pair1 * TW.PairBytes, 0, out var e0, out _);
            TW.Load(w + (long)pair1 * TW.PairBytes, 1, out var e1, out _);
            var v = Vector256.Create(x[K - 1]);
            (a0, b0) = (Vector256.FusedMultiplyAdd(e0, v, a0), Vector256.FusedMultiplyAdd(e1, v, b0));
            v = Vector256.Create(x1[K - 1]);
            (a1, b1) = (Vector256.FusedMultiplyAdd(e0, v, a1), Vector256.FusedMultiplyAdd(e1, v, b1));
            v = Vector256.Create(x2[K - 1]);
            (a2, b2) = (Vector256.FusedMultiplyAdd(e0, v, a2), Vector256.FusedMultiplyAdd(e1, v, b2));
            v = Vector256.Create(x3[K - 1]);
            (a3, b3) = (Vector256.FusedMultiplyAdd(e0, v, a3), Vector256.FusedMultiplyAdd(e1, v, b3));
        }
        Put(a0, b0, y, valid);
        Put(a1, b1, y1, valid);
        Put(a2, b2, y2, valid);
        Put(a3, b3, y3, valid);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1<TW, TPrefetch>(float* x, int K, byte* w0, byte* w1, float* y, int valid0, int valid1, int pair0, int pair1)
        where TW : struct, IPanelWeights where TPrefetch : struct, IWeightPrefetch
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default;
        if (pair0 > 0)
        {
            (a0, b0) = (Get(y, valid0, 0), Get(y, valid0, 1));
            if (valid1 > 0) (a1, b1) = (Get(y + P, valid1, 0), Get(y + P, valid1, 1));
        }
        for (int kk = pair0; kk < pair1; kk++)
        {
            byte* p0 = w0 + (long)kk * TW.PairBytes, p1 = w1 + (long)kk * TW.PairBytes;
            TPrefetch.Ahead(p0, 0);
            TPrefetch.Ahead(p1, 0);
            TW.Load(p0, 0, out var e0, out var f0);
            TW.Load(p0, 1, out var e1, out var f1);
            TW.Load(p1, 0, out var e2, out var f2);
            TW.Load(p1, 1, out var e3, out var f3);
            (a0, b0) = F(e0, f0, e1, f1, x + 2 * kk, a0, b0);
            (a1, b1) = F(e2, f2, e3, f3, x + 2 * kk, a1, b1);
        }
        if ((K & 1) != 0 && pair1 == K >> 1)
        {
            byte* p0 = w0 + (long)pair1 * TW.PairBytes, p1 = w1 + (long)pair1 * TW.PairBytes;
            TW.Load(p0, 0, out var e0, out _);
            TW.Load(p0, 1, out var e1, out _);
            TW.Load(p1, 0, out var e2, out _);
            TW.Load(p1, 1, out var e3, out _);
            var v = Vector256.Create(x[K - 1]);
            (a0, b0) = (Vector256.FusedMultiplyAdd(e0, v, a0), Vector256.FusedMultiplyAdd(e1, v, b0));
            (a1, b1) = (Vector256.FusedMultiplyAdd(e2, v, a1), Vector256.FusedMultiplyAdd(e3, v, b1));
        }
        Put(a0, b0, y, valid0);
        if (valid1 > 0) Put(a1, b1, y + P, valid1);
    }

    // one column pair into a token's two halves: even column, then odd, in each chain
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>) F(Vector256<float> e0, Vector256<float> f0, Vector256<float> e1, Vector256<float> f1,
        float* x, Vector256<float> a, Vector256<float> b)
    {
        var xe = Vector256.Create(x[0]);
        var xo = Vector256.Create(x[1]);
        return (Vector256.FusedMultiplyAdd(f0, xo, Vector256.FusedMultiplyAdd(e0, xe, a)),
            Vector256.FusedMultiplyAdd(f1, xo, Vector256.FusedMultiplyAdd(e1, xe, b)));
    }

    // rows [8·half, 8·half + 8) of a panel's sums so far, of which the first valid are real
    private static Vector256<float> Get(float* src, int valid, int half)
    {
        if (valid == P) return Vector256.Load(src + 8 * half);
        var v = Vector256<float>.Zero;
        for (int i = 8 * half; i < Math.Min(valid, 8 * half + 8); i++) v = v.WithElement(i - 8 * half, src[i]);
        return v;
    }

    private static void Put(Vector256<float> lo, Vector256<float> hi, float* dst, int valid)
    {
        if (valid == P)
        {
            lo.Store(dst);
            hi.Store(dst + 8);
            return;
        }
        for (int i = 0; i < valid; i++) dst[i] = i < 8 ? lo.GetElement(i) : hi.GetElement(i - 8);
    }
}
