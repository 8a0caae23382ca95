using System.Runtime.InteropServices;
using TpLlm.Checkpoints;
using TpLlm.Tensors.Panels;

namespace TpLlm.Tensors.Formats.Bf16;

/// <summary>
/// bf16 weights in panels of 16 rows holding column pairs, <c>[roundUp(Rows, 16)/16][ceil(Cols/2)][16][2]</c>: one
/// 64-byte load gives 16 rows × columns (k, k+1), and each 32-bit lane widens to f32 with <c>u &lt;&lt; 16</c> (column k)
/// and <c>u &amp; 0xFFFF0000</c> (column k+1), so the kernel keeps whole output rows in vector lanes (<see cref="PanelGemm"/>).
/// Padding rows and the padding column of an odd Cols are zero. bf16 rows are taken as they are, and block-quantized ones
/// (GGUF's Q8_0, Q4_0) widened — how an LM head stored quantized becomes unquantized; f16 and f32 would round, so they
/// are refused (they go to f32).
/// </summary>
public sealed unsafe class Bf16Matrix : WeightMatrix
{
    private readonly AlignedBuffer _data;

    /// <summary>Allocates a zero matrix.</summary>
    public Bf16Matrix(int rows, int cols) : base(rows, cols) => _data = new AlignedBuffer((long)PaddedRows * ColPairs * 4, $"bf16 weight matrix [{rows}, {cols}]");

    /// <inheritdoc/>
    public override IWeightFormat Format => Bf16Format.Instance;

    /// <inheritdoc/>
    public override long ByteSize => (long)PaddedRows * ColPairs * 4;

    /// <summary>Column pairs per panel row: ceil(Cols / 2).</summary>
    public int ColPairs => (Cols + 1) / 2;

    /// <summary>Pointer to the panels.</summary>
    public ushort* Pointer => (ushort*)_data.Pointer;

    private long Index(int r, int c) => (((long)(r / Panel) * ColPairs + c / 2) * Panel + r % Panel) * 2 + (c & 1);

    /// <summary>Writes row <paramref name="r"/> from <paramref name="src"/> (Cols bf16 values).</summary>
    public void SetBf16Row(int r, ReadOnlySpan<ushort> src)
    {
        if ((uint)r >= (uint)Rows || src.Length < Cols) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of [{Rows}, {Cols}] from {src.Length} elements");
        ushort* p = Pointer + Index(r, 0);
        for (int c = 0; c < Cols; c++) p[(long)(c >> 1) * 2 * Panel + (c & 1)] = src[c];
    }

    /// <inheritdoc/>
    public override void SetRow(int r, ReadOnlySpan<byte> src, DType dtype, string where)
    {
        CheckRow(r, src.Length, dtype);
        if (dtype == DType.BF16)
        {
            SetBf16Row(r, MemoryMarshal.Cast<byte, ushort>(src));
            return;
        }
        if (dtype.BlockElements() == 1) throw new CheckpointException($"{where}: dtype {dtype} cannot be stored as BF16 without rounding");
        var row = RowScratch.Get(Cols);
        ElementConvert.ToF32(dtype, src[..(int)dtype.Bytes(Cols)], row, where);
        ushort* p = Pointer + Index(r, 0);
        for (int c = 0; c < Cols; c++) p[(long)(c >> 1) * 2 * Panel + (c & 1)] = Tensors.Bf16.FromF32(row[c]);
    }

    /// <summary>The bf16 bits of element (r, c).</summary>
    public ushort GetBf16(int r, int c) => Pointer[Index(r, c)];

    /// <inheritdoc/>
    public override float Get(int r, int c) => Tensors.Bf16.ToF32(GetBf16(r, c));

    /// <inheritdoc/>
    public override void RowToF32(int r, Span<float> dst)
    {
        ushort* p = Pointer + Index(r, 0);
        for (int c = 0; c < Cols; c++) dst[c] = Tensors.Bf16.ToF32(p[(long)(c >> 1) * 2 * Panel + (c & 1)]);
    }

    /// <inheritdoc/>
    public override void Multiply(KernelPath path, bool vnni, float* x, int T, int n0, int n1, float* y, int ldy) =>
        PanelGemm.Run<Bf16Pair, StoredPanels>(path, x, T, Cols, new StoredPanels(_data.Pointer, ColPairs, Bf16Pair.PairBytes), n0, n1, y, ldy);
}
