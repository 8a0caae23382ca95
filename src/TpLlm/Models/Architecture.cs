namespace TpLlm.Models;

/// <summary>
/// How one family of decoder-only transformers differs from Llama, in the few places it does: tensor names, where the
/// norms sit and their form, the MLP's activation, biases, per-head q/k norms, a scaled embedding. The shapes and
/// per-layer settings (head_dim, each layer's attention window and RoPE, the attention scale, logit soft-capping)
/// come from the config (<see cref="ModelConfig"/>); the tensor-parallel layers, the loader and the decode step are
/// the same for every family. A new family is one more entry in <see cref="Architectures"/>.
/// </summary>
public sealed record Architecture
{
    /// <summary>The <c>model_type</c> it describes.</summary>
    public required string ModelType { get; init; }

    /// <summary>The RMSNorm's weight form: <c>w·x</c> (Llama) or <c>(1 + w)·x</c> (Gemma, which stores w 0-centred).</summary>
    public NormForm NormForm { get; init; } = NormForm.Weight;

    /// <summary>The gate's activation in <c>down(act(gate(x)) · up(x))</c>.</summary>
    public MlpActivation Activation { get; init; } = MlpActivation.Silu;

    /// <summary>The activation names the config may give (<c>hidden_act</c> or <c>hidden_activation</c>).</summary>
    public IReadOnlyList<string> ActivationNames { get; init; } = ["silu"];

    /// <summary>q, k and v projections have biases (Qwen2; any family whose config sets <c>attention_bias</c>).</summary>
    public bool QkvBias { get; init; }

    /// <summary>
    /// Per-head RMSNorm of queries and keys (<c>self_attn.q_norm</c>, <c>self_attn.k_norm</c>, <c>[head_dim]</c>) after the
    /// projection, before RoPE (Qwen3, Gemma 3). Their weights are replicated on every rank and applied to its heads.
    /// </summary>
    public bool QkNorm { get; init; }

    /// <summary>
    /// Norms on the outputs too (Gemma 3's sandwich): <c>x += post_attention_layernorm(attn(input_layernorm(x)))</c>, then
    /// <c>x += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))</c>. Without them (Llama),
    /// <c>post_attention_layernorm</c> is the norm before the MLP.
    /// </summary>
    public bool SandwichNorms { get; init; }

    /// <summary>The embedding output is multiplied by √hidden_size (Gemma; the tied head is not).</summary>
    public bool ScaledEmbedding { get; init; }

    /// <summary>The config must give <c>head_dim</c> (the family's default in transformers is not hidden/heads).</summary>
    public bool RequiresHeadDim { get; init; }

    /// <summary>Layer windows come from <c>sliding_window_pattern</c> (Gemma 3) rather than <c>use_sliding_window</c> (Qwen) or <c>sliding_window</c> alone (Mistral).</summary>
    public SlidingLayers SlidingLayers { get; init; } = SlidingLayers.None;

    /// <summary>
    /// RoPE's inverse frequencies are rounded to bf16 for bf16 checkpoints, as transformers does when it casts the model
    /// (its <c>inv_freq</c> buffer with it). Kept for the families whose reference logits are transformers' (Llama,
    /// Mistral, Qwen2: 1e-3 → 1e-5); Qwen3 and Gemma 3 are verified against float64 and llama.cpp, which do not round.
    /// </summary>
    public bool RoundsRopeLikeTransformers { get; init; }

    /// <summary>Name of the norm before the MLP (<c>model.layers.{l}.NAME.weight</c>).</summary>
    public string PreFeedForwardNorm => SandwichNorms ? "pre_feedforward_layernorm" : "post_attention_layernorm";
}

/// <summary>An RMSNorm's weight form.</summary>
public enum NormForm
{
    /// <summary><c>x̂ · w</c>.</summary>
    Weight,
    /// <summary><c>x̂ · (1 + w)</c>.</summary>
    OnePlusWeight,
}

/// <summary>The gated MLP's activation.</summary>
public enum MlpActivation
{
    /// <summary>SiLU (SwiGLU).</summary>
    Silu,
    /// <summary>GELU with the tanh approximation (<c>gelu_pytorch_tanh</c>; GeGLU).</summary>
    GeluTanh,
}

/// <summary>Which layers attend over a sliding window, by the family's config fields (an explicit <c>layer_types</c> overrides all).</summary>
public enum SlidingLayers
{
    /// <summary>Every layer is global (Llama).</summary>
    None,
    /// <summary>Every layer slides when <c>sliding_window</c> is set (Mistral).</summary>
    AllWhenWindowSet,
    /// <summary>Layers from <c>max_window_layers</c> on slide when <c>use_sliding_window</c> is true (Qwen2, Qwen3).</summary>
    FromMaxWindowLayers,
    /// <summary>Layer i is global when (i + 1) % <c>sliding_window_pattern</c> == 0, else it slides (Gemma 3).</summary>
    Pattern,
}
