using System.Numerics.Tensors;

namespace TpLlm.Tensors;

/// <summary>
/// The GeGLU MLP activation of Gemma: <c>out = gelu_tanh(gate) · up</c> with the tanh approximation
/// <c>gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))</c> (transformers' <c>gelu_pytorch_tanh</c>, not erf GELU).
/// </summary>
public static class GeluTanhGlu
{
    private const float C = 0.7978845608028654f; // √(2/π)

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
            TensorPrimitives.Multiply(gate, gate, dst);                 // g²
            TensorPrimitives.Multiply(dst, 0.044715f * C, dst);
            TensorPrimitives.Add(dst, C, dst);                          // C·(1 + 0.044715·g²)
            TensorPrimitives.Multiply(dst, gate, dst);                  // C·(g + 0.044715·g³)
            TensorPrimitives.Tanh(dst, dst);
            TensorPrimitives.Multiply(dst, 0.5f, dst);
            TensorPrimitives.Add(dst, 0.5f, dst);                       // ½(1 + tanh(…))
            TensorPrimitives.Multiply(dst, gate, dst);
            TensorPrimitives.Multiply(dst, up, dst);
        }
    }
}
