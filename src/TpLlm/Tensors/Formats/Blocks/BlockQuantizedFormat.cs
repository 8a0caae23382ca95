using TpLlm.Checkpoints;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>A format of <see cref="BlockQuantizedMatrix{TQ}"/>: one scale per 32 input columns of a row, levels by <typeparamref name="TQ"/>.</summary>
internal sealed class BlockQuantizedFormat<TQ> : IWeightFormat where TQ : struct, IQuantBlock
{
    /// <inheritdoc/>
    public string Name => TQ.Name;

    /// <inheritdoc/>
    public int GroupSize => BlockQuantizedMatrix<TQ>.Group;

    /// <inheritdoc/>
    public bool IsQuantized => true;

    /// <inheritdoc/>
    public bool TakesVnni => TQ.TakesVnni;

    /// <inheritdoc/>
    public WeightMatrix Create(int rows, int cols, DType source) => new BlockQuantizedMatrix<TQ>(this, rows, cols);
}
