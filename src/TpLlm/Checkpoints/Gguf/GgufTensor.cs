namespace TpLlm.Checkpoints.Gguf;

/// <summary>
/// A GGUF tensor behind the <see cref="SourceTensor"/> seam: shape <c>[ne[1], ne[0]]</c>, rows of whole blocks. With
/// <c>headsOfRows</c> &gt; 0 (a Llama q or k projection as llama.cpp's converter wrote it) Hugging Face row
/// <c>h·D + i·D/2 + j</c> of head h is file row <c>h·D + 2j + i</c> (D the head's rows, i ∈ {0, 1}).
/// </summary>
internal sealed class GgufTensor(GgufFile file, GgufTensorInfo info, DType dtype, string where, int headsOfRows)
    : SourceTensor(info.Name, dtype, info.Shape, where)
{
    /// <inheritdoc/>
    public override ReadOnlySpan<byte> Row(long row, long col, int count)
    {
        CheckRange(row, col, count);
        long rowBytes = DType.Bytes(Shape[^1]);
        return file.Bytes(info, FileRow(row) * rowBytes + DType.Bytes(col), (int)DType.Bytes(count));
    }

    // the row of the file that holds Hugging Face row r
    private long FileRow(long r)
    {
        if (headsOfRows == 0 || Shape.Length != 2) return r;
        long d = Shape[0] / headsOfRows, half = d / 2, within = r % d;
        long i = within / half, j = within % half;
        return r - within + 2 * j + i;
    }

    /// <inheritdoc/>
    public override void Release() => file.Release(info);
}
