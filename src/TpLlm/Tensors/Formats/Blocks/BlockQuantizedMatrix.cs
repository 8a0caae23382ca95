using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TpLlm.Checkpoints;
using TpLlm.Tensors.Panels;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// Weights quantized in groups of 32 input columns of a row, each with an f16 scale (GGUF's Q8_0 and Q4_0 blocks:
/// the same numbers, so their files load with no detour through floats), stored as blocks of 16 rows × 32 columns,
/// <c>[roundUp(Rows, 16)/16][Kp/32][16 f16 scales | levels of 16 × 32]</c> with Kp = Cols rounded up to 32 (zero
/// levels past Cols). Rows are quantized one at a time as the loader hands them over, so no full-precision copy of a
/// shard is made.
/// <para>Kernels: <see cref="QuantizedProduct{TQ}"/> quantizes the activations to int8 and sums each block's levels
/// against them in integers, scaled once per block; one token streams the blocks, more share each unpacked slab.</para>
/// </summary>
internal sealed unsafe class BlockQuantizedMatrix<TQ> : WeightMatrix where TQ : struct, IQuantBlock
{
    /// <summary>Input columns per scale.</summary>
    public const int Group = 32;

    /// <summary>Bytes of one block: 16 f16 scales, then the levels.</summary>
    public static int BlockBytes => 2 * Panel + TQ.LevelBytes;

    private readonly AlignedBuffer _data;
    private readonly IWeightFormat _format;

    /// <summary>Allocates a zero matrix.</summary>
    public BlockQuantizedMatrix(IWeightFormat format, int rows, int cols) : base(rows, cols)
    {
        _format = format;
        _data = new AlignedBuffer(ByteSize, $"{TQ.Name} weight matrix [{rows}, {cols}]");
    }

    /// <summary>Groups per row: ceil(Cols / 32).</summary>
    public int Groups => (Cols + Group - 1) / Group;

    /// <inheritdoc/>
    public override IWeightFormat Format => _format;

    /// <inheritdoc/>
    public override long ByteSize => (long)PaddedRows / Panel * Groups * BlockBytes;

    /// <inheritdoc/>
    public override int InputStride => Groups * Group;

    /// <summary>Block (panel, group).</summary>
    public byte* Block(int panel, int group) => _data.Pointer + ((long)panel * Groups + group) * BlockBytes;

    /// <summary>The f16 bits of row <paramref name="r"/>'s scale for <paramref name="group"/>.</summary>
    public ushort ScaleBits(int r, int group) => ((ushort*)Block(r / Panel, group))[r % Panel];

    /// <summary>The level of element (r, c).</summary>
    public int Level(int r, int c) => TQ.Level(Block(r / Panel, c / Group) + 2 * Panel, r % Panel, c % Group);

    /// <summary>Sets row <paramref name="r"/>'s group <paramref name="group"/> directly: its scale bits and 32 levels (a file already quantized).</summary>
    public void SetGroup(int r, int group, ushort scaleBits, ReadOnlySpan<sbyte> levels)
    {
        byte* block = Block(r / Panel, group);
        ((ushort*)block)[r % Panel] = scaleBits;
        TQ.SetLevels(block + 2 * Panel, r % Panel, levels);
    }

    /// <summary>Quantizes row <paramref name="r"/> from <paramref name="row"/> (Cols values).</summary>
    public void SetRow(int r, ReadOnlySpan<float> row)
    {
        if ((uint)r >= (uint)Rows || row.Length < Cols) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of [{Rows}, {Cols}] from {row.Length} elements");
        Span<float> tail = stackalloc float[Group];
        Span<sbyte> levels = stackalloc sbyte[16 * Group];
        Span<ushort> scales = stackalloc ushort[16];
        int full = Cols / Group, g = 0;
        for (; g + 16 <= full; g += 16) // whole groups sixteen at a time, which the formats' searches run side by side
        {
            TQ.Quantize16(row.Slice(g * Group, 16 * Group), scales, levels);
            for (int j = 0; j < 16; j++) SetGroup(r, g + j, scales[j], levels.Slice(j * Group, Group));
        }
        levels = levels[..Group];
        for (; g < Groups; g++)
        {
            int n = Math.Min(Group, Cols - g * Group);
            scoped ReadOnlySpan<float> group = row.Slice(g * Group, n);
            if (n < Group)
            {
                group.CopyTo(tail);
                tail[n..].Clear();
                group = tail;
            }
            ushort scale = TQ.Quantize(group, levels);
            SetGroup(r, g, scale, levels);
        }
    }

    /// <inheritdoc/>
    public override void SetRow(int r, ReadOnlySpan<byte> src, DType dtype, string where)
    {
        CheckRow(r, src.Length, dtype);
        if (dtype == TQ.FileBlock && Cols % Group == 0)
        {
            // the file's own blocks: scale and levels as they are, no detour through floats
            Span<sbyte> levels = stackalloc sbyte[Group];
            int bytes = dtype.Size();
            for (int g = 0; g < Groups; g++)
            {
                ushort scale = GgmlBlocks.Read(dtype, src.Slice(g * bytes, bytes), levels);
                SetGroup(r, g, scale, levels);
            }
            return;
        }
        var row = RowScratch.Get(Cols);
        ElementConvert.ToF32(dtype, src[..(int)dtype.Bytes(Cols)], row, where);
        SetRow(r, row);
    }

    /// <inheritdoc/>
    public override float Get(int r, int c) => Half16.ToF32(ScaleBits(r, c / Group)) * Level(r, c);

    /// <inheritdoc/>
    public override void RowToF32(int r, Span<float> dst)
    {
        for (int c = 0; c < Cols; c++) dst[c] = Get(r, c);
    }

    /// <inheritdoc/>
    public override void Multiply(KernelPath path, bool vnni, float* x, int T, int n0, int n1, float* y, int ldy)
    {
        QuantizedProduct<TQ>.Run(this, path, vnni, x, T, n0, n1, y, ldy);
    }
}
