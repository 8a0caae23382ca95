using System.Runtime.Intrinsics;
using TpLlm.Tensors.Panels;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// Column pairs of a <see cref="BlockQuantizedMatrix{TQ}"/>'s panels dequantized into f32 panels (<see cref="F32Pair"/>)
/// on demand, for <see cref="PanelGemm"/>: a block of at most <see cref="MaxPairs"/> pairs of each of two panels at a
/// time, into per-thread scratch that stays in cache while every token tile runs over it. The values are exact
/// (a level times an f16 scale fits an f32), so the result is the dequantized matrix's product.
/// </summary>
internal readonly unsafe struct DequantizedPanels<TQ>(BlockQuantizedMatrix<TQ> matrix, KernelPath path) : IPanelSource where TQ : struct, IQuantBlock
{
    private const int Pairs = 512; // 32 groups: 64 KB of f32 panel per slot (L2)
    private const int PairsPerGroup = BlockQuantizedMatrix<TQ>.Group / 2;

    [ThreadStatic] private static AlignedBuffer? _scratch;

    /// <inheritdoc/>
    public int MaxPairs => Pairs;

    /// <inheritdoc/>
    public bool Streams => false;

    /// <inheritdoc/>
    public byte* Panel(int panel, int pair0, int pair1, int slot)
    {
        _scratch ??= new AlignedBuffer(2L * Pairs * F32Pair.PairBytes, "dequantization scratch");
        float* dst = (float*)(_scratch.Pointer + (long)slot * Pairs * F32Pair.PairBytes);
        const int P = WeightMatrix.Panel;
        for (int g = pair0 / PairsPerGroup; g * PairsPerGroup < pair1; g++)
        {
            byte* block = matrix.Block(panel, g), levels = block + 2 * P;
            float* d = dst + (long)(g * PairsPerGroup - pair0) * 2 * P;
            if (path == KernelPath.Vector512)
            {
                for (int line = 0; line < BlockQuantizedMatrix<TQ>.BlockBytes; line += 64) PrefetchAhead.Ahead(block, line); // the weights stream from memory here
                var s = Half16.ToF32x16((ushort*)block);
                for (int i = 0; i < PairsPerGroup; i++)
                {
                    TQ.Widen(levels, i, out var e, out var f);
                    (e * s).Store(d + i * 2 * P);
                    (f * s).Store(d + i * 2 * P + P);
                }
            }
            else
                for (int r = 0; r < P; r++)
                {
                    float s = Half16.ToF32(((ushort*)block)[r]);
                    for (int c = 0; c < BlockQuantizedMatrix<TQ>.Group; c++) d[(c / 2) * 2 * P + (c & 1) * P + r] = s * TQ.Level(levels, r, c);
                }
        }
        // the tiles now compute on this block for a while: meanwhile bring the panel's next block from memory into L2,
        // so dequantizing it does not wait on DRAM (the weights are read once per call, and not otherwise overlapped)
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            byte* next = matrix.Block(panel, (pair1 + PairsPerGroup - 1) / PairsPerGroup);
            long bytes = (long)(pair1 - pair0) / PairsPerGroup * BlockQuantizedMatrix<TQ>.BlockBytes;
            for (long off = 0; off < bytes; off += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch1(next + off);
        }
        return (byte*)dst - (long)pair0 * F32Pair.PairBytes;
    }
}
