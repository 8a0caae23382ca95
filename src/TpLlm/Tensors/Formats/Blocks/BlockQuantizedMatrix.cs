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
/// <para>Kernels: one token (decode) streams the blocks and accumulates each block's levels against the activations
/// before scaling once per block (<see cref="Decode512"/>); more tokens dequantize a block of column pairs of two
/// panels into f32 scratch panels once per call (<see cref="DequantizedPanels{TQ}"/>) and run the register tiles of
/// the unquantized formats on it, so prefill is as fast as f32 panels.</para>
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
        Span<sbyte> levels = stackalloc sbyte[Group];
        for (int g = 0; g < Groups; g++)
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
        var row = RowScratch.Get(Cols);
        ElementConvert.ToF32(dtype, src[..(Cols * dtype.Size())], row, where);
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
    public override void Multiply(KernelPath path, float* x, int T, int n0, int n1, float* y, int ldy)
    {
        if (path == KernelPath.Vector512 && T == 1) Decode512(x, n0, n1, y);
        else PanelGemm.Run<F32Pair, DequantizedPanels<TQ>>(path, x, T, InputStride, new DequantizedPanels<TQ>(this, path), n0, n1, y, ldy);
    }

    /// <summary>
    /// One token, two panels at a time: per block, the levels of each column pair are widened and multiplied into a
    /// block accumulator, which is scaled once at the block's end into the row's — the weights streamed once, at the
    /// memory's pace, prefetched ahead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Decode512(float* x, int n0, int n1, float* y)
    {
        int groups = Groups, blockBytes = BlockBytes;
        // Σx of each group (x is zero past Cols), for the offset
        float* sums = stackalloc float[groups];
        for (int g = 0; g < groups; g++)
            sums[g] = TQ.Offset == 0 ? 0 : Vector512.Sum(Vector512.Load(x + g * Group) + Vector512.Load(x + g * Group + 16));
        for (int p = n0; p < n1; p += 2 * Panel)
        {
            bool two = p + Panel < n1;
            byte* b0 = Block(p / Panel, 0), b1 = two ? Block(p / Panel + 1, 0) : b0;
            Vector512<float> a0 = default, a1 = default;
            for (int g = 0; g < groups; g++, b0 += blockBytes, b1 += blockBytes)
            {
                for (int line = 0; line < blockBytes; line += 64)
                {
                    PrefetchAhead.Ahead(b0, line);
                    PrefetchAhead.Ahead(b1, line);
                }
                byte* l0 = b0 + 2 * Panel, l1 = b1 + 2 * Panel;
                float* xg = x + g * Group;
                // four accumulators a panel (even and odd column, of even and odd pairs): eight independent chains, so the
                // FMAs' latency does not bound a stream that brings 3.6 weights a byte (q4)
                Vector512<float> c0 = default, c1 = default, d0 = default, d1 = default, e0s = default, e1s = default, f0s = default, f1s = default;
                for (int i = 0; i < Group / 2; i += 2)
                {
                    TQ.WidenStored(l0, i, out var e0, out var f0);
                    TQ.WidenStored(l1, i, out var e1, out var f1);
                    var xe = Vector512.Create(xg[2 * i]);
                    var xo = Vector512.Create(xg[2 * i + 1]);
                    c0 = Vector512.FusedMultiplyAdd(e0, xe, c0);
                    d0 = Vector512.FusedMultiplyAdd(f0, xo, d0);
                    c1 = Vector512.FusedMultiplyAdd(e1, xe, c1);
                    d1 = Vector512.FusedMultiplyAdd(f1, xo, d1);
                    TQ.WidenStored(l0, i + 1, out var g0, out var h0);
                    TQ.WidenStored(l1, i + 1, out var g1, out var h1);
                    var ye = Vector512.Create(xg[2 * i + 2]);
                    var yo = Vector512.Create(xg[2 * i + 3]);
                    e0s = Vector512.FusedMultiplyAdd(g0, ye, e0s);
                    f0s = Vector512.FusedMultiplyAdd(h0, yo, f0s);
                    e1s = Vector512.FusedMultiplyAdd(g1, ye, e1s);
                    f1s = Vector512.FusedMultiplyAdd(h1, yo, f1s);
                }
                // Σ (stored − offset)·x = Σ stored·x − offset·Σx: the offset's part once per block, the same for every row
                var correction = Vector512.Create(TQ.Offset * sums[g]);
                a0 = Vector512.FusedMultiplyAdd((c0 + d0) + (e0s + f0s) - correction, Half16.ToF32x16((ushort*)b0), a0);
                a1 = Vector512.FusedMultiplyAdd((c1 + d1) + (e1s + f1s) - correction, Half16.ToF32x16((ushort*)b1), a1);
            }
            Put(a0, y + p, Math.Min(Panel, n1 - p));
            if (two) Put(a1, y + p + Panel, Math.Min(Panel, n1 - p - Panel));
        }
    }

    private static void Put(Vector512<float> v, float* dst, int valid)
    {
        if (valid == Panel) v.Store(dst);
        else for (int i = 0; i < valid; i++) dst[i] = v.GetElement(i);
    }
}
