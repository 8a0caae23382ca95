using System.Runtime.CompilerServices;

namespace TpLlm.Tensors;

/// <summary>
/// A weight matrix <c>[Rows, Cols]</c>, pinned, 64-byte aligned, allocated once.
/// <para>BF16 is stored in panels of 16 rows holding column pairs,
/// <c>[roundUp(Rows, 16)/16][ceil(Cols/2)][16][2]</c>: one 64-byte load gives 16 rows × columns
/// (k, k+1), and each 32-bit lane widens to f32 with <c>u &lt;&lt; 16</c> (column k) and
/// <c>u &amp; 0xFFFF0000</c> (column k+1), so the kernel keeps whole output rows in vector lanes.
/// Padding rows and the padding column of an odd Cols are zero.</para>
/// <para>F32 and Int8 are row-major, each row padded with zeros to <see cref="Stride"/> = roundUp(Cols, 32).</para>
/// </summary>
public sealed unsafe class WeightMatrix
{
    /// <summary>Elements per kernel block; F32/Int8 rows are padded to a multiple of it.</summary>
    public const int Block = 32;

    /// <summary>Rows per BF16 panel.</summary>
    public const int Panel = 16;

    private readonly ushort[]? _bf16;
    private readonly float[]? _f32;
    private readonly sbyte[]? _i8;
    private readonly int _offset; // elements from array start to the 64-byte aligned origin

    /// <summary>Output rows.</summary>
    public int Rows { get; }

    /// <summary>Input columns (the logical width).</summary>
    public int Cols { get; }

    /// <summary>Elements between row starts of F32/Int8 storage (Cols rounded up to <see cref="Block"/>); for BF16, Cols.</summary>
    public int Stride { get; }

    /// <summary>Storage format.</summary>
    public WeightFormat Format { get; }

    /// <summary>Per-row dequantization scales for <see cref="WeightFormat.Int8"/>; else null.</summary>
    public float[]? Scales { get; }

    /// <summary>Bytes of weight storage (without alignment slack).</summary>
    public long ByteSize => (Format == WeightFormat.BF16 ? (long)PaddedRows * ColPairs * 2 : (long)Rows * Stride) * ElementSize + (Scales?.Length ?? 0) * 4L;

    /// <summary>Column pairs per BF16 panel row: ceil(Cols / 2).</summary>
    public int ColPairs => (Cols + 1) / 2;

    /// <summary>Rows rounded up to whole panels (BF16).</summary>
    public int PaddedRows => (Rows + Panel - 1) / Panel * Panel;

    /// <summary>Bytes per element of <see cref="Format"/>.</summary>
    public int ElementSize => Format switch { WeightFormat.BF16 => 2, WeightFormat.F32 => 4, _ => 1 };

    /// <summary>Allocates a zero-filled matrix.</summary>
    public WeightMatrix(int rows, int cols, WeightFormat format)
    {
        if (rows < 0 || cols < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"weight matrix [{rows}, {cols}] must have rows ≥ 0 and cols ≥ 1");
        Rows = rows;
        Cols = cols;
        Format = format;
        Stride = format == WeightFormat.BF16 ? cols : (cols + Block - 1) / Block * Block;
        long n = format == WeightFormat.BF16 ? (long)PaddedRows * ColPairs * 2 : (long)rows * Stride;
        if (n > Array.MaxLength - 64) throw new TpLlmException($"weight matrix [{rows}, {cols}] has {n} elements, more than one array holds");
        switch (format)
        {
            case WeightFormat.BF16:
                _bf16 = GC.AllocateArray<ushort>((int)n + 32, pinned: true);
                _offset = AlignOffset(Unsafe.AsPointer(ref _bf16[0]), 2);
                break;
            case WeightFormat.F32:
                _f32 = GC.AllocateArray<float>((int)n + 16, pinned: true);
                _offset = AlignOffset(Unsafe.AsPointer(ref _f32[0]), 4);
                break;
            default:
                _i8 = GC.AllocateArray<sbyte>((int)n + 64, pinned: true);
                _offset = AlignOffset(Unsafe.AsPointer(ref _i8[0]), 1);
                Scales = new float[rows];
                break;
        }
    }

    private static int AlignOffset(void* p, int elementSize) => (int)((64 - ((nint)p & 63)) & 63) / elementSize;

    /// <summary>Pointer to row 0 of bf16 storage.</summary>
    public ushort* Bf16Pointer => Format == WeightFormat.BF16 ? (ushort*)Unsafe.AsPointer(ref _bf16![_offset]) : throw Wrong(WeightFormat.BF16);

    /// <summary>Pointer to row 0 of f32 storage.</summary>
    public float* F32Pointer => Format == WeightFormat.F32 ? (float*)Unsafe.AsPointer(ref _f32![_offset]) : throw Wrong(WeightFormat.F32);

    /// <summary>Pointer to row 0 of int8 storage.</summary>
    public sbyte* Int8Pointer => Format == WeightFormat.Int8 ? (sbyte*)Unsafe.AsPointer(ref _i8![_offset]) : throw Wrong(WeightFormat.Int8);

    /// <summary>Index of bf16 element (r, c) in panel storage.</summary>
    private long PanelIndex(int r, int c) => (((long)(r / Panel) * ColPairs + c / 2) * Panel + r % Panel) * 2 + (c & 1);

    /// <summary>Writes row <paramref name="r"/> of bf16 storage from <paramref name="src"/> (Cols elements).</summary>
    public void SetBf16Row(int r, ReadOnlySpan<ushort> src)
    {
        if ((uint)r >= (uint)Rows || src.Length < Cols) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of [{Rows}, {Cols}] from {src.Length} elements");
        ushort* p = Bf16Pointer + PanelIndex(r, 0);
        for (int c = 0; c < Cols; c++) p[(long)(c >> 1) * 2 * Panel + (c & 1)] = src[c];
    }

    /// <summary>The bf16 bits of element (r, c).</summary>
    public ushort GetBf16(int r, int c) => Bf16Pointer[PanelIndex(r, c)];

    /// <summary>Row <paramref name="r"/> of f32 storage (Cols elements).</summary>
    public Span<float> F32Row(int r) => new(F32Pointer + (long)r * Stride, Cols);

    /// <summary>Row <paramref name="r"/> of int8 storage (Cols elements).</summary>
    public Span<sbyte> Int8Row(int r) => new(Int8Pointer + (long)r * Stride, Cols);

    /// <summary>Element (r, c) widened to f32 (dequantized for int8) — for tests and lookups.</summary>
    public float Get(int r, int c) => Format switch
    {
        WeightFormat.BF16 => Bf16.ToF32(GetBf16(r, c)),
        WeightFormat.F32 => F32Row(r)[c],
        _ => Int8Row(r)[c] * Scales![r],
    };

    /// <summary>Row <paramref name="r"/> widened to f32 into <paramref name="dst"/> (Cols elements).</summary>
    public void RowToF32(int r, Span<float> dst)
    {
        switch (Format)
        {
            case WeightFormat.BF16:
                ushort* p = Bf16Pointer + PanelIndex(r, 0);
                for (int c = 0; c < Cols; c++) dst[c] = Bf16.ToF32(p[(long)(c >> 1) * 2 * Panel + (c & 1)]);
                break;
            case WeightFormat.F32: F32Row(r).CopyTo(dst); break;
            default:
                var row = Int8Row(r);
                float s = Scales![r];
                for (int c = 0; c < Cols; c++) dst[c] = row[c] * s;
                break;
        }
    }

    private InvalidOperationException Wrong(WeightFormat wanted) => new($"weight matrix is {Format}, not {wanted}");
}
