using System.Numerics.Tensors;

namespace TpLlm.Tensors;

/// <summary>Logit soft-capping (Gemma 2's, and any config's <c>final_logit_softcapping</c>): <c>x ← cap · tanh(x / cap)</c>.</summary>
public static class Softcap
{
    /// <summary>Caps <paramref name="x"/> in place.</summary>
    public static void Apply(Span<float> x, float cap)
    {
        TensorPrimitives.Multiply(x, 1f / cap, x);
        TensorPrimitives.Tanh(x, x);
        TensorPrimitives.Multiply(x, cap, x);
    }
}
