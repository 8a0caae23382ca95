namespace TpLlm.Tensors;

/// <summary>How a <see cref="WeightMatrix"/> stores its elements.</summary>
public enum WeightFormat
{
    /// <summary>bfloat16, as most checkpoints ship.</summary>
    BF16,
    /// <summary>float32 (F32 and F16 checkpoints, widened exactly).</summary>
    F32,
    /// <summary>int8 with one f32 scale per output row (weight-only quantization).</summary>
    Int8,
}
