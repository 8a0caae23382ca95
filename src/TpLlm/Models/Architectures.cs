namespace TpLlm.Models;

/// <summary>
/// The families TpLlm runs, one description each (transformers' <c>modeling_&lt;type&gt;.py</c>). Qwen3 is Llama with
/// per-head q/k norms; Gemma 3 adds (1 + w) norms, sandwich norms, GeGLU, a scaled embedding and a pattern of
/// sliding-window layers.
/// </summary>
public static class Architectures
{
    private static readonly Architecture[] All =
    [
        new() { ModelType = "llama", RoundsRopeLikeTransformers = true },
        new() { ModelType = "mistral", SlidingLayers = SlidingLayers.AllWhenWindowSet, RoundsRopeLikeTransformers = true },
        new() { ModelType = "qwen2", QkvBias = true, SlidingLayers = SlidingLayers.FromMaxWindowLayers, RoundsRopeLikeTransformers = true },
        new() { ModelType = "qwen3", QkNorm = true, RequiresHeadDim = true, SlidingLayers = SlidingLayers.FromMaxWindowLayers },
        new()
        {
            ModelType = "gemma3_text", NormForm = NormForm.OnePlusWeight, Activation = MlpActivation.GeluTanh,
            ActivationNames = ["gelu_pytorch_tanh", "gelu_tanh"], QkNorm = true, SandwichNorms = true, ScaledEmbedding = true,
            RequiresHeadDim = true, SlidingLayers = SlidingLayers.Pattern,
        },
    ];

    /// <summary>The supported <c>model_type</c> values.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = [.. All.Select(a => a.ModelType)];

    /// <summary>The description of <paramref name="modelType"/>, or null.</summary>
    public static Architecture? For(string modelType) => All.FirstOrDefault(a => a.ModelType == modelType);
}
