using TpLlm.Checkpoints;
using TpLlm.Tensors.Panels;

namespace TpLlm.Tensors.Formats.F32;

/// <summary>
/// f32 weights in panels of 16 rows, <c>[roundUp(Rows, 16)/16][ceil(Cols/2)][2][16]</c>: a column pair is column k of
/// the 16 rows, then column k + 1 — the bf16 panels' order, so the same register tiles run both (<see cref="PanelGemm"/>).
/// </summary>
public sealed unsafe class F32Matrix : WeightMatrix
{
    private readonly AlignedBuffer _data;

    /// <summary>Allocates a zero matrix.</summary>
    public F32Matrix(int rows, int cols) : base(rows, cols) => _data = new AlignedBuffer((long)PaddedRows * ColPairs * 2 * 4, $"f32 weight matrix [{rows}, {cols}]");

    /// <inheritdoc/>
    public override IWeightFormat Format => F32Format.Instance;

    /// <inheritdoc/>
    public override long ByteSize => (long)PaddedRows * ColPairs * 2 * 4;

    private int ColPairs => (Cols + 1) / 2;

    private float* At(int r, int c) => (float*)_data.Pointer + (((long)(r / Panel) * ColPairs + c / 2) * 2 + (c & 1)) * Panel + r % Panel;

    /// <summary>Writes row <paramref name="r"/> from <paramref name="src"/> (Cols values).</summary>
    public void SetRow(int r, ReadOnlySpan<float> src)
    {
        if ((uint)r >= (uint)Rows || src.Length < Cols) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of [{Rows}, {Cols}] from {src.Length} elements");
        for (int c = 0; c < Cols; c++) *At(r, c) = src[c];
    }

    /// <inheritdoc/>
    public override void SetRow(int r, ReadOnlySpan<byte> src, DType dtype, string where)
    {
        CheckRow(r, src.Length, dtype);
        var row = RowScratch.Get(Cols);
        ElementConvert.ToF32(dtype, src[..(int)dtype.Bytes(Cols)], row, where);
        SetRow(r, row);
    }

    /// <inheritdoc/>
    public override float Get(int r, int c) => *At(r, c);

    /// <inheritdoc/>
    public override void RowToF32(int r, Span<float> dst)
    {
        for (int c = 0; c < Cols; c++) dst[c] = *At(r, c);
    }

    /// <inheritdoc/>
    public override void Multiply(KernelPath path, bool vnni, float* x, int T, int n0, int n1, float* y, int ldy) =>
        PanelGemm.Run<F32Pair, StoredPanels>(path, x, T, Cols, new StoredPanels(_data.Pointer, ColPairs, F32Pair.PairBytes), n0, n1, y, ldy);
}
