namespace TpLlm.Checkpoints;

/// <summary>One tensor declared in a safetensors header.</summary>
/// <param name="Name">Exact tensor name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first.</param>
/// <param name="Begin">Start offset, relative to the data section.</param>
/// <param name="End">End offset (exclusive), relative to the data section.</param>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Byte length of the data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
