using TpLlm.Checkpoints;

namespace TpLlm.Tensors.Formats.F32;

/// <summary>f32 panels (<see cref="F32Matrix"/>): F16 and F32 checkpoints, widened exactly.</summary>
public sealed class F32Format : IWeightFormat
{
    /// <summary>The one instance.</summary>
    public static readonly F32Format Instance = new();

    private F32Format() { }

    /// <inheritdoc/>
    public string Name => "f32";

    /// <inheritdoc/>
    public int GroupSize => 1;

    /// <inheritdoc/>
    public bool IsQuantized => false;

    /// <inheritdoc/>
    public WeightMatrix Create(int rows, int cols, DType source) => new F32Matrix(rows, cols);
}
