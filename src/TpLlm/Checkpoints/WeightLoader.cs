using TpLlm.Tensors;

namespace TpLlm.Checkpoints;

/// <summary>
/// Copies one rank's slice of a checkpoint tensor out of the memory map into a <see cref="WeightMatrix"/> of the
/// format asked for: rows for column-parallel weights, columns for row-parallel ones. Only the slice is touched and
/// each row goes straight into the matrix (a quantized format quantizes it there), so nothing of full size — nor a
/// full-precision copy of the shard — is allocated. By default the checkpoint's precision is kept
/// (<see cref="WeightFormats.Native"/>: BF16 stays BF16, F16 and F32 are widened exactly to F32, GGUF's Q8_0 and Q4_0
/// blocks go into the int8 and q4 formats as they are).
/// </summary>
public sealed class WeightLoader
{
    private readonly IWeightSource _source;
    private readonly int _threads;
    [ThreadStatic] private static float[]? _wide; // blocks around a column range that splits them, dequantized (the matrix has its own scratch)

    /// <summary>Loads from <paramref name="source"/>, filling a matrix's rows on <paramref name="threads"/> threads.</summary>
    public WeightLoader(IWeightSource source, int threads = 1)
    {
        _source = source;
        _threads = Math.Max(1, threads);
    }

    /// <summary>The weights read from.</summary>
    public IWeightSource Source => _source;

    /// <summary>
    /// Rows [rowStart, rowStart + rows) of the 2-D tensor <paramref name="name"/>, whose full
    /// shape must be [<paramref name="expectedRows"/>, <paramref name="expectedCols"/>]. Rows at or
    /// beyond <paramref name="expectedRows"/> are padding and stay zero.
    /// </summary>
    public WeightMatrix LoadRows(string name, int rowStart, int rows, int expectedRows, int expectedCols, IWeightFormat? format = null) =>
        LoadStacked([new RowSlice(name, rowStart, rows, expectedRows)], expectedCols, format);

    /// <summary>
    /// Several row slices stacked into one matrix (fused q/k/v or gate/up): slice i fills the
    /// next <see cref="RowSlice.Rows"/> rows; rows past a tensor's end are padding and stay zero.
    /// The matrix is in <paramref name="format"/> (default: the source's precision — its element type when every tensor
    /// has the same, else F32).
    /// </summary>
    public WeightMatrix LoadStacked(IReadOnlyList<RowSlice> slices, int expectedCols, IWeightFormat? format = null)
    {
        var sources = slices.Select(s => Require2D(s.Name, s.ExpectedRows, expectedCols)).ToArray();
        var dtype = sources.All(s => s.DType == sources[0].DType) ? sources[0].DType : DType.F32;
        var w = (format ?? WeightFormats.Native).Create(slices.Sum(s => s.Rows), expectedCols, dtype);
        int dest = 0;
        for (int i = 0; i < slices.Count; i++)
        {
            var t = sources[i];
            var s = slices[i];
            if (s.RowStart < 0) throw new CheckpointException($"{t.Where}: row start {s.RowStart} is negative");
            int real = Math.Clamp(s.ExpectedRows - s.RowStart, 0, s.Rows);
            int first = dest;
            Rows(real, r => w.SetRow(first + r, t.Row(s.RowStart + r, 0, expectedCols), t.DType, t.Where));
            t.Release();
            dest += s.Rows;
        }
        return w;
    }

    // fills rows [0, n): on the loader's threads when there are enough rows to share (quantizing is the work)
    private void Rows(int n, Action<int> fill)
    {
        if (_threads == 1 || n < 64) for (int r = 0; r < n; r++) fill(r);
        else System.Threading.Tasks.Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = _threads }, fill);
    }

    /// <summary>
    /// Columns [colStart, colStart + cols) of every row of the 2-D tensor <paramref name="name"/>
    /// of full shape [<paramref name="expectedRows"/>, <paramref name="expectedCols"/>]. From a block-quantized tensor,
    /// a range that splits its blocks is read as the whole blocks around it, dequantized, and cut.
    /// </summary>
    public WeightMatrix LoadColumns(string name, int colStart, int cols, int expectedRows, int expectedCols, IWeightFormat? format = null)
    {
        var t = Require2D(name, expectedRows, expectedCols);
        if (colStart < 0 || cols < 1 || colStart + cols > expectedCols)
            throw new CheckpointException($"{t.Where}: columns [{colStart}, {colStart + cols}) outside its {expectedCols} columns");
        int block = t.DType.BlockElements();
        bool whole = colStart % block == 0 && (cols % block == 0 || colStart + cols == expectedCols);
        var w = (format ?? WeightFormats.Native).Create(expectedRows, cols, whole ? t.DType : DType.F32);
        if (whole)
            Rows(expectedRows, r => w.SetRow(r, t.Row(r, colStart, cols), t.DType, t.Where));
        else
        {
            int first = colStart / block * block, last = Math.Min(expectedCols, (colStart + cols + block - 1) / block * block);
            Rows(expectedRows, r =>
            {
                var wide = (_wide is { } b && b.Length >= last - first ? b : _wide = new float[last - first]).AsSpan(0, last - first);
                ElementConvert.ToF32(t.DType, t.Row(r, first, last - first), wide, t.Where);
                w.SetRow(r, System.Runtime.InteropServices.MemoryMarshal.AsBytes(wide.Slice(colStart - first, cols)), DType.F32, t.Where);
            });
        }
        t.Release();
        return w;
    }

    /// <summary>Elements [start, start + count) of the 1-D tensor <paramref name="name"/> of length <paramref name="expectedLength"/>, as f32.</summary>
    public float[] LoadVector(string name, int expectedLength, int start = 0, int count = -1)
    {
        var t = _source.Tensor(name);
        if (t.Shape.Length != 1 || t.Shape[0] != expectedLength)
            throw new CheckpointException($"{t.Where} has shape {t.ShapeText}, the config implies [{expectedLength}]");
        if (count < 0) count = expectedLength - start;
        if (!t.DType.IsWeightType() || t.DType.BlockElements() != 1)
            throw new CheckpointException($"{t.Where} is {t.DType}; vectors must be BF16, F16 or F32");
        var result = new float[count];
        ElementConvert.ToF32(t.DType, t.Row(0, start, count), result, t.Where);
        return result;
    }

    private SourceTensor Require2D(string name, int rows, int cols)
    {
        var t = _source.Tensor(name);
        if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
            throw new CheckpointException($"{t.Where} has shape {t.ShapeText}, the config implies [{rows}, {cols}]");
        if (!t.DType.IsWeightType())
            throw new CheckpointException($"{t.Where} is {t.DType}; weights must be BF16, F16, F32, Q8_0 or Q4_0");
        return t;
    }

    /// <summary>Rows [RowStart, RowStart + Rows) of tensor Name, whose full row count is ExpectedRows.</summary>
    public readonly record struct RowSlice(string Name, int RowStart, int Rows, int ExpectedRows);
}
