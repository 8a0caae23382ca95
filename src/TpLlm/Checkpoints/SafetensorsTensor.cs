namespace TpLlm.Checkpoints;

/// <summary>A tensor of a <see cref="SafetensorsFile"/> behind the <see cref="SourceTensor"/> seam.</summary>
public sealed class SafetensorsTensor(SafetensorsFile file, TensorInfo info)
    : SourceTensor(info.Name, info.DType, info.Shape, $"{file.Path}: tensor '{info.Name}'")
{
    /// <inheritdoc/>
    public override ReadOnlySpan<byte> Row(long row, long col, int count)
    {
        CheckRange(row, col, count);
        int es = DType.Size();
        return file.Bytes(info, (row * Shape[^1] + col) * es, count * es);
    }

    /// <inheritdoc/>
    public override void Release() => file.Release(info);
}
