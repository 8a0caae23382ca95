using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// One token's activations quantized per group of 32, for the integer products of <see cref="QuantizedProduct{TQ}"/>:
/// to int8 (llama.cpp's Q8_0 activations, which its Q4_0 dot products take; <c>m</c> = 127) or to int16 (<c>m</c> =
/// 32767, for formats whose products multiply words). <c>d = max|x| / m</c>, <c>q = round(x · (m / max|x|))</c> (ties
/// to even), and Σq of the group for formats that store levels with an offset. Every path computes the same numbers
/// (the same f32 operations; the maximum is exact in any order), so the products agree across paths.
/// </summary>
internal static unsafe class ActivationQuantizer
{
    /// <summary>
    /// Quantizes <paramref name="groups"/> groups of <paramref name="x"/> (<c>[groups·32]</c>, zero past the row) into
    /// <paramref name="q"/> (<c>[groups·32]</c> sbytes, or shorts when <paramref name="wide"/>), <paramref name="d"/>
    /// <c>[groups]</c> and <paramref name="sums"/> <c>[groups]</c>.
    /// </summary>
    public static void Quantize(KernelPath path, float* x, int groups, bool wide, byte* q, float* d, int* sums)
    {
        float m = wide ? short.MaxValue : sbyte.MaxValue;
        for (int g = 0; g < groups; g++)
        {
            float* xg = x + g * 32;
            if (path == KernelPath.Vector512)
            {
                var lo = Vector512.Load(xg);
                var hi = Vector512.Load(xg + 16);
                var mag = Vector512.Max(Vector512.Abs(lo), Vector512.Abs(hi));
                float amax = Max(mag.GetLower(), mag.GetUpper());
                var inv = Vector512.Create(Inverse(m, amax));
                var a = Vector512.ConvertToInt32(Vector512.Round(lo * inv));
                var b = Vector512.ConvertToInt32(Vector512.Round(hi * inv));
                sums[g] = Vector512.Sum(a + b);
                var shorts = Vector512.Narrow(a, b); // |q| ≤ m: narrowing needs no saturation
                if (wide) shorts.Store((short*)q + g * 32);
                else Vector512.Narrow(shorts, shorts).GetLower().Store((sbyte*)q + g * 32);
                d[g] = amax / m;
            }
            else if (path == KernelPath.Vector256)
            {
                var v0 = Vector256.Load(xg);
                var v1 = Vector256.Load(xg + 8);
                var v2 = Vector256.Load(xg + 16);
                var v3 = Vector256.Load(xg + 24);
                float amax = Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                var inv = Vector256.Create(Inverse(m, amax));
                var a0 = Vector256.ConvertToInt32(Vector256.Round(v0 * inv));
                var a1 = Vector256.ConvertToInt32(Vector256.Round(v1 * inv));
                var a2 = Vector256.ConvertToInt32(Vector256.Round(v2 * inv));
                var a3 = Vector256.ConvertToInt32(Vector256.Round(v3 * inv));
                sums[g] = Vector256.Sum((a0 + a1) + (a2 + a3));
                Vector256<short> s01 = Vector256.Narrow(a0, a1), s23 = Vector256.Narrow(a2, a3);
                if (wide)
                {
                    s01.Store((short*)q + g * 32);
                    s23.Store((short*)q + g * 32 + 16);
                }
                else Vector256.Narrow(s01, s23).Store((sbyte*)q + g * 32);
                d[g] = amax / m;
            }
            else
            {
                float amax = 0;
                for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(xg[i]));
                float inv = Inverse(m, amax);
                int sum = 0;
                for (int i = 0; i < 32; i++)
                {
                    int v = (int)MathF.Round(xg[i] * inv); // ties to even, as the vectors' conversion
                    if (wide) ((short*)q)[g * 32 + i] = (short)v;
                    else ((sbyte*)q)[g * 32 + i] = (sbyte)v;
                    sum += v;
                }
                sums[g] = sum;
                d[g] = amax / m;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Inverse(float m, float amax) => amax > 0 ? m / amax : 0f;

    private static float Max(Vector256<float> a, Vector256<float> b)
    {
        var m = Vector256.Max(a, b);
        var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        float r = 0;
        for (int i = 0; i < 4; i++) r = Math.Max(r, m4.GetElement(i));
        return r;
    }
}
