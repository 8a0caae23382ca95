using TpLlm.Checkpoints;

namespace TpLlm.Tensors.Formats.Bf16;

/// <summary>bfloat16 as most checkpoints ship it, in 16-row panels (<see cref="Bf16Matrix"/>); the LM head's and embedding's format.</summary>
public sealed class Bf16Format : IWeightFormat
{
    /// <summary>The one instance.</summary>
    public static readonly Bf16Format Instance = new();

    private Bf16Format() { }

    /// <inheritdoc/>
    public string Name => "bf16";

    /// <inheritdoc/>
    public int GroupSize => 1;

    /// <inheritdoc/>
    public bool IsQuantized => false;

    /// <inheritdoc/>
    public WeightMatrix Create(int rows, int cols, DType source) => new Bf16Matrix(rows, cols);
}
