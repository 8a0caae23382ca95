using TpLlm.Tensors;

namespace TpLlm.Checkpoints;

/// <summary>
/// Copies one rank's slice of a checkpoint tensor out of the memory map into a <see cref="WeightMatrix"/> of the
/// format asked for: rows for column-parallel weights, columns for row-parallel ones. Only the slice is touched and
/// each row goes straight into the matrix (a quantized format quantizes it there), so nothing of full size — nor a
/// full-precision copy of the shard — is allocated. By default the checkpoint's precision is kept
/// (<see cref="WeightFormats.Native"/>: BF16 stays BF16, F16 and F32 are widened exactly to F32).
/// </summary>
public sealed class WeightLoader
{
    private readonly Checkpoint _checkpoint;
    private readonly int _threads;

    /// <summary>Loads from <paramref name="checkpoint"/>, filling a matrix's rows on <paramref name="threads"/> threads.</summary>
    public WeightLoader(Checkpoint checkpoint, int threads = 1)
    {
        _checkpoint = checkpoint;
        _threads = Math.Max(1, threads);
    }

    /// <summary>The checkpoint read from.</summary>
    public Checkpoint Checkpoint => _checkpoint;

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
    /// The matrix is in <paramref name="format"/> (default: the checkpoint's precision — BF16 when every tensor is BF16, else F32).
    /// </summary>
    public WeightMatrix LoadStacked(IReadOnlyList<RowSlice> slices, int expectedCols, IWeightFormat? format = null)
    {
        var sources = slices.Select(s => Require2D(s.Name, s.ExpectedRows, expectedCols)).ToArray();
        var dtype = sources.All(s => s.Item2.DType == DType.BF16) ? DType.BF16 : DType.F32;
        var w = (format ?? WeightFormats.Native).Create(slices.Sum(s => s.Rows), expectedCols, dtype);
        int dest = 0;
        for (int i = 0; i < slices.Count; i++)
        {
            var (file, info) = sources[i];
            var s = slices[i];
            if (s.RowStart < 0) throw new CheckpointException($"{file.Path}: tensor '{s.Name}': row start {s.RowStart} is negative");
            int real = Math.Clamp(s.ExpectedRows - s.RowStart, 0, s.Rows);
            int rowBytes = expectedCols * info.DType.Size();
            string where = $"{file.Path}: tensor '{s.Name}'";
            int first = dest;
            Rows(real, r => w.SetRow(first + r, file.Bytes(info, (long)(s.RowStart + r) * rowBytes, rowBytes), info.DType, where));
            file.Release(info);
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
    /// of full shape [<paramref name="expectedRows"/>, <paramref name="expectedCols"/>].
    /// </summary>
    public WeightMatrix LoadColumns(string name, int colStart, int cols, int expectedRows, int expectedCols, IWeightFormat? format = null)
    {
        var (file, info) = Require2D(name, expectedRows, expectedCols);
        if (colStart < 0 || cols < 1 || colStart + cols > expectedCols)
            throw new CheckpointException($"{file.Path}: tensor '{name}': columns [{colStart}, {colStart + cols}) outside its {expectedCols} columns");
        var w = (format ?? WeightFormats.Native).Create(expectedRows, cols, info.DType);
        int es = info.DType.Size();
        string where = $"{file.Path}: tensor '{name}'";
        Rows(expectedRows, r => w.SetRow(r, file.Bytes(info, ((long)r * expectedCols + colStart) * es, cols * es), info.DType, where));
        file.Release(info);
        return w;
    }

    /// <summary>Elements [start, start + count) of the 1-D tensor <paramref name="name"/> of length <paramref name="expectedLength"/>, as f32.</summary>
    public float[] LoadVector(string name, int expectedLength, int start = 0, int count = -1)
    {
        var (file, info) = _checkpoint.Get(name);
        if (info.Shape.Length != 1 || info.Shape[0] != expectedLength)
            throw new CheckpointException($"{file.Path}: tensor '{name}' has shape {info.ShapeText}, the config implies [{expectedLength}]");
        if (count < 0) count = expectedLength - start;
        var result = new float[count];
        ElementConvert.ToF32(info.DType, file.Bytes(info, (long)start * info.DType.Size(), count * info.DType.Size()), result, $"{file.Path}: tensor '{name}'");
        return result;
    }

    private (SafetensorsFile, TensorInfo) Require2D(string name, int rows, int cols)
    {
        var (file, info) = _checkpoint.Get(name);
        if (info.Shape.Length != 2 || info.Shape[0] != rows || info.Shape[1] != cols)
            throw new CheckpointException($"{file.Path}: tensor '{name}' has shape {info.ShapeText}, the config implies [{rows}, {cols}]");
        if (!info.DType.IsWeightType())
            throw new CheckpointException($"{file.Path}: tensor '{name}' is {info.DType}; weights must be BF16, F16 or F32");
        return (file, info);
    }

    /// <summary>Rows [RowStart, RowStart + Rows) of tensor Name, whose full row count is ExpectedRows.</summary>
    public readonly record struct RowSlice(string Name, int RowStart, int Rows, int ExpectedRows);

}
