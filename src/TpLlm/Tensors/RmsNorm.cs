using System.Numerics.Tensors;

namespace TpLlm.Tensors;

/// <summary>RMSNorm: <c>y = x / sqrt(mean(x²) + eps) · w</c>, row by row.</summary>
public static class RmsNorm
{
    /// <summary>Normalizes each of the <paramref name="T"/> rows of <paramref name="x"/> <c>[T, H]</c> into <paramref name="y"/>.</summary>
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, int T, Span<float> y)
    {
        int H = weight.Length;
        for (int t = 0; t < T; t++)
        {
            var row = x.Slice(t * H, H);
            var dst = y.Slice(t * H, H);
            double ss = 0;
            foreach (float v in row) ss += (double)v * v;
            float inv = (float)(1.0 / Math.Sqrt(ss / H + eps));
            TensorPrimitives.Multiply(row, inv, dst);
            TensorPrimitives.Multiply(dst, weight, dst);
        }
    }
}
