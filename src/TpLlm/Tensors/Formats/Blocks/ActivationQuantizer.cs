using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// One token's activations quantized per group of 32 to int8, for the integer products of
/// <see cref="QuantizedProduct{TQ}"/>: <c>q = round(x · (127 / b))</c> (ties to even), <c>d = b / 127</c>, and
/// offset · Σq of the group (what a format that stores levels + offset takes off its block sums). The bound b is
/// max |x| (llama.cpp's Q8_0 activations, which its Q4_0 dot products take) or, for pair-bound formats, the largest
/// |x₀| + |x₁| of a column pair, so that |q₀| + |q₁| ≤ 128 and unsigned bytes up to 255 times a pair stay inside a
/// word. Every path computes the same numbers (the same f32 operations; the maximum is exact in any order, and a pair's
/// sum is one rounding either way round), so the products agree across paths.
/// </summary>
internal static unsafe class ActivationQuantizer
{
    private const float M = sbyte.MaxValue;

    /// <summary>
    /// Quantizes <paramref name="groups"/> groups of <paramref name="x"/> (<c>[groups·32]</c>, zero past the row) into
    /// <paramref name="q"/> (<c>[groups·32]</c> sbytes), <paramref name="d"/> <c>[groups]</c> and <paramref name="offsets"/>
    /// <c>[groups]</c> (<paramref name="offset"/> · Σq), bounding pairs when <paramref name="pairBound"/>.
    /// </summary>
    public static void Quantize(KernelPath path, float* x, int groups, bool pairBound, int offset, byte* q, float* d, int* offsets)
    {
        for (int g = 0; g < groups; g++)
        {
            float* xg = x + g * 32;
            sbyte* qg = (sbyte*)q + g * 32;
            if (path == KernelPath.Vector512)
            {
                var lo = Vector512.Load(xg);
                var hi = Vector512.Load(xg + 16);
                Vector512<float> alo = Vector512.Abs(lo), ahi = Vector512.Abs(hi);
                if (pairBound)
                {
                    alo += Vector512.Shuffle(alo, Neighbours512);
                    ahi += Vector512.Shuffle(ahi, Neighbours512);
                }
                var mag = Vector512.Max(alo, ahi);
                float bound = Max(mag.GetLower(), mag.GetUpper());
                var inv = Vector512.Create(Inverse(bound));
                var a = Vector512.ConvertToInt32(Vector512.Round(lo * inv));
                var b = Vector512.ConvertToInt32(Vector512.Round(hi * inv));
                offsets[g] = offset * Vector512.Sum(a + b);
                var shorts = Vector512.Narrow(a, b); // |q| ≤ 127: narrowing needs no saturation
                Vector512.Narrow(shorts, shorts).GetLower().Store(qg);
                d[g] = bound / M;
            }
            else if (path == KernelPath.Vector256)
            {
                var v0 = Vector256.Load(xg);
                var v1 = Vector256.Load(xg + 8);
                var v2 = Vector256.Load(xg + 16);
                var v3 = Vector256.Load(xg + 24);
                Vector256<float> a0 = Vector256.Abs(v0), a1 = Vector256.Abs(v1), a2 = Vector256.Abs(v2), a3 = Vector256.Abs(v3);
                if (pairBound)
                {
                    a0 += Vector256.Shuffle(a0, Neighbours256);
                    a1 += Vector256.Shuffle(a1, Neighbours256);
                    a2 += Vector256.Shuffle(a2, Neighbours256);
                    a3 += Vector256.Shuffle(a3, Neighbours256);
                }
                float bound = Max(Vector256.Max(a0, a1), Vector256.Max(a2, a3));
                var inv = Vector256.Create(Inverse(bound));
                var q0 = Vector256.ConvertToInt32(Vector256.Round(v0 * inv));
                var q1 = Vector256.ConvertToInt32(Vector256.Round(v1 * inv));
                var q2 = Vector256.ConvertToInt32(Vector256.Round(v2 * inv));
                var q3 = Vector256.ConvertToInt32(Vector256.Round(v3 * inv));
                offsets[g] = offset * Vector256.Sum((q0 + q1) + (q2 + q3));
                Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3)).Store(qg);
                d[g] = bound / M;
            }
            else
            {
                float bound = 0;
                for (int i = 0; i < 32; i += 2)
                {
                    float a = Math.Abs(xg[i]), b = Math.Abs(xg[i + 1]);
                    bound = pairBound ? Math.Max(bound, a + b) : Math.Max(bound, Math.Max(a, b));
                }
                float inv = Inverse(bound);
                int sum = 0;
                for (int i = 0; i < 32; i++)
                {
                    int v = (int)MathF.Round(xg[i] * inv); // ties to even, as the vectors' conversion
                    qg[i] = (sbyte)v;
                    sum += v;
                }
                offsets[g] = offset * sum;
                d[g] = bound / M;
            }
        }
    }

    // lane i takes lane i ^ 1: each column pair's other member
    private static readonly Vector512<int> Neighbours512 = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    private static readonly Vector256<int> Neighbours256 = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Inverse(float bound) => bound > 0 ? M / bound : 0f;

    private static float Max(Vector256<float> a, Vector256<float> b)
    {
        var m = Vector256.Max(a, b);
        var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        float r = 0;
        for (int i = 0; i < 4; i++) r = Math.Max(r, m4.GetElement(i));
        return r;
    }
}
