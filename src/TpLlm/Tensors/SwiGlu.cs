using System.Numerics.Tensors;

namespace TpLlm.Tensors;

/// <summary>The gated MLP activation: <c>out = silu(gate) · up</c>.</summary>
public static class SwiGlu
{
    /// <summary>
    /// <paramref name="gateUp"/> is <c>[T, 2·I_r]</c> (gate columns then up columns per row);
    /// writes <paramref name="output"/> <c>[T, I_r]</c>.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> gateUp, int T, int width, Span<float> output)
    {
        for (int t = 0; t < T; t++)
        {
            var gate = gateUp.Slice(t * 2 * width, width);
            var up = gateUp.Slice(t * 2 * width + width, width);
            var dst = output.Slice(t * width, width);
            // silu(g) = g · sigmoid(g)
            TensorPrimitives.Sigmoid(gate, dst);
            TensorPrimitives.Multiply(dst, gate, dst);
            TensorPrimitives.Multiply(dst, up, dst);
        }
    }
}
