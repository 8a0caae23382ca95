namespace TpLlm.Checkpoints;

/// <summary>
/// One tensor of an <see cref="IWeightSource"/>, shaped as PyTorch shapes it (a matrix is <c>[rows, cols]</c>, a row
/// contiguous), read a row range at a time without copying. For block types (<see cref="DTypes.BlockElements"/> &gt; 1)
/// ranges are whole blocks.
/// </summary>
public abstract class SourceTensor
{
    /// <summary>Creates the description.</summary>
    protected SourceTensor(string name, DType dtype, long[] shape, string where)
    {
        Name = name; DType = dtype; Shape = shape; Where = where;
    }

    /// <summary>The tensor's name in the source.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Dimensions, outermost first.</summary>
    public long[] Shape { get; }

    /// <summary>"file: tensor 'name'", for messages.</summary>
    public string Where { get; }

    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>
    /// The bytes of elements [<paramref name="col"/>, <paramref name="col"/> + <paramref name="count"/>) of row
    /// <paramref name="row"/> of a matrix (of a 1-D tensor: row 0), as a view valid while the source is open.
    /// </summary>
    public abstract ReadOnlySpan<byte> Row(long row, long col, int count);

    /// <summary>Lets go of the pages read so far (after a rank has copied its slice).</summary>
    public abstract void Release();

    /// <summary>Throws unless [<paramref name="col"/>, + <paramref name="count"/>) of row <paramref name="row"/> lies in the tensor in whole blocks.</summary>
    protected void CheckRange(long row, long col, int count)
    {
        long rows = Shape.Length == 1 ? 1 : Shape[0], cols = Shape[^1];
        int block = DType.BlockElements();
        if (row < 0 || row >= rows || col < 0 || count < 0 || col + count > cols)
            throw new CheckpointException($"{Where}: read of row {row}, elements [{col}, {col + count}) outside its shape {ShapeText}");
        if (col % block != 0 || (count % block != 0 && col + count != cols))
            throw new CheckpointException($"{Where}: elements [{col}, {col + count}) split its {DType} blocks of {block}");
    }
}
