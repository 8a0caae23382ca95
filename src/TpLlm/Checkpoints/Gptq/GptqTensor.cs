using System.Buffers.Binary;

namespace TpLlm.Checkpoints.Gptq;

/// <summary>
/// One GPTQ-quantized weight <c>[N, K]</c> read as GGUF Q4_0 blocks (18 bytes per 32 weights of a row: the f16 scale,
/// then byte j holding level j in its low nibble and level j + 16 in its high one). GPTQ stores the transpose, packed:
/// <c>qweight [K/8, N]</c> int32 with k's level in bits 4·(k % 8) of element (k / 8, n); <c>scales [K/G, N]</c> f16;
/// <c>qzeros [K/G, N/8]</c> int32 packed along N the same way. A symmetric checkpoint's weight is scale · (level − 8),
/// which is Q4_0's — every zero point must be 8 (stored as 7 in the original layout), which is checked as blocks are read.
/// A <c>g_idx</c> out of column order (act-order: <c>desc_act</c>) gives 32 neighbouring columns several scales, which no
/// Q4_0 block holds: such a weight reads as bf16 rows of its values instead (as GGUF's K-quants do; <c>--quantize</c>
/// requantizes them). Rows come out through a per-thread buffer, valid until the thread reads the next.
/// </summary>
public sealed unsafe class GptqTensor : SourceTensor
{
    private readonly (SafetensorsFile File, TensorInfo Info) _qweight, _scales, _qzeros;
    private readonly int _n, _k, _group;
    private readonly bool _minusOne;
    private readonly uint* _qw, _qz; // the parts' data, mapped
    private readonly ushort* _sc;
    private readonly int[]? _groupOf; // act-order: each column's group
    [ThreadStatic] private static byte[]? _row;

    /// <summary>Checks the parts' types and shapes against each other and the config.</summary>
    /// <exception cref="CheckpointException">A part of the wrong type or shape, or a <c>g_idx</c> naming a group that is not there.</exception>
    public GptqTensor(string name, (SafetensorsFile File, TensorInfo Info) qweight, (SafetensorsFile File, TensorInfo Info) scales,
        (SafetensorsFile File, TensorInfo Info) qzeros, (SafetensorsFile File, TensorInfo Info)? gIdx, GptqConfig config)
        : base(name, GroupsOf(qweight, gIdx, config) is null ? DType.Q4_0 : DType.BF16, ShapeOf(qweight), $"{qweight.File.Path}: tensor '{qweight.Info.Name}'")
    {
        (_qweight, _scales, _qzeros) = (qweight, scales, qzeros);
        _n = (int)Shape[0];
        _k = (int)Shape[1];
        _group = config.GroupSize == -1 ? _k : config.GroupSize;
        _minusOne = config.ZerosMinusOne;
        if (_k % 32 != 0 || _k % _group != 0)
            throw new CheckpointException($"{Where}: K = {_k} input columns, not a multiple of 32 and of the group size {_group}");
        int groups = _k / _group;
        Require(scales, DType.F16, [groups, _n]);
        Require(qzeros, DType.I32, [groups, (_n + 7) / 8]);
        _qw = (uint*)Data(qweight);
        _qz = (uint*)Data(qzeros);
        _sc = (ushort*)Data(scales);
        _groupOf = GroupsOf(qweight, gIdx, config);
    }

    // each column's group when g_idx is out of column order, else null (checked: every id names a group)
    private static int[]? GroupsOf((SafetensorsFile File, TensorInfo Info) qweight, (SafetensorsFile File, TensorInfo Info)? gIdx, GptqConfig config)
    {
        if (gIdx is not { } g) return null;
        int k = (int)ShapeOf(qweight)[1], group = config.GroupSize == -1 ? k : config.GroupSize, groups = Math.Max(1, k / group);
        if (g.Info.DType != DType.I32 || !g.Info.Shape.SequenceEqual([(long)k]))
            throw new CheckpointException($"{g.File.Path}: tensor '{g.Info.Name}' is {g.Info.DType} {g.Info.ShapeText}, expected I32 [{k}]");
        var ids = g.File.Bytes(g.Info, 0, 4 * k);
        var groupOf = new int[k];
        bool ordered = true;
        for (int c = 0; c < k; c++)
        {
            int id = BinaryPrimitives.ReadInt32LittleEndian(ids[(4 * c)..]);
            if ((uint)id >= (uint)groups)
                throw new CheckpointException($"{g.File.Path}: tensor '{g.Info.Name}'[{c}] = {id}, outside the {groups} groups");
            groupOf[c] = id;
            ordered &= id == c / group;
        }
        return ordered ? null : groupOf;
    }

    private static long[] ShapeOf((SafetensorsFile File, TensorInfo Info) qweight)
    {
        var i = qweight.Info;
        if (i.DType != DType.I32 || i.Shape.Length != 2)
            throw new CheckpointException($"{qweight.File.Path}: tensor '{i.Name}' is {i.DType} {i.ShapeText}, expected I32 [K/8, N]");
        return [i.Shape[1], i.Shape[0] * 8];
    }

    private void Require((SafetensorsFile File, TensorInfo Info) part, DType dtype, long[] shape)
    {
        var i = part.Info;
        if (i.DType != dtype || !i.Shape.SequenceEqual(shape))
            throw new CheckpointException($"{part.File.Path}: tensor '{i.Name}' is {i.DType} {i.ShapeText}, expected {dtype} [{string.Join(", ", shape)}] for {Name} {ShapeText} in groups of {_group}");
    }

    private static byte* Data((SafetensorsFile File, TensorInfo Info) part) =>
        part.Info.ByteLength > int.MaxValue ? throw new CheckpointException($"{part.File.Path}: tensor '{part.Info.Name}' is over 2 GB")
        : (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(part.File.Bytes(part.Info, 0, (int)part.Info.ByteLength)));

    /// <inheritdoc/>
    public override ReadOnlySpan<byte> Row(long row, long col, int count)
    {
        CheckRange(row, col, count);
        if (_groupOf is not null) return Bf16Row((int)row, (int)col, count);
        int n = (int)row, blocks = count / 32;
        var output = (_row is { } b && b.Length >= blocks * 18 ? b : _row = new byte[Math.Max(blocks, _k / 32) * 18]).AsSpan(0, blocks * 18);
        fixed (byte* o = output)
            for (int blk = 0; blk < blocks; blk++)
            {
                int k0 = (int)col + 32 * blk, group = k0 / _group;
                CheckZero(group, n);
                // levels k0 … k0+31 are the nibbles of four words down column n; Q4_0's byte j is level j | level j+16 << 4
                uint* w = _qw + (long)(k0 / 8) * _n + n;
                byte* block = o + 18 * blk;
                *(ushort*)block = _sc[(long)group * _n + n];
                *(ulong*)(block + 2) = Spread(w[0]) | Spread(w[2L * _n]) << 4;
                *(ulong*)(block + 10) = Spread(w[_n]) | Spread(w[3L * _n]) << 4;
            }
        return output;
    }

    // act-order: each column's value, scale of its own group · (level − 8), rounded to bf16
    private ReadOnlySpan<byte> Bf16Row(int n, int col, int count)
    {
        var output = (_row is { } b && b.Length >= 2 * count ? b : _row = new byte[2 * Math.Max(count, _k)]).AsSpan(0, 2 * count);
        fixed (byte* o = output)
            for (int i = 0; i < count; i++)
            {
                int k = col + i, group = _groupOf![k];
                CheckZero(group, n);
                int level = (int)((_qw[(long)(k / 8) * _n + n] >> (4 * (k % 8))) & 15) - 8;
                ((ushort*)o)[i] = Tensors.Bf16.FromF32(Tensors.Formats.Blocks.Half16.ToF32(_sc[(long)group * _n + n]) * level);
            }
        return output;
    }

    // the zero point of (group, output n) must be 8: symmetric, Q4_0's offset
    private void CheckZero(int group, int n)
    {
        int zero = (int)((_qz[(long)group * ((_n + 7) / 8) + n / 8] >> (4 * (n % 8))) & 15) + (_minusOne ? 1 : 0);
        if (zero != 8)
            throw new CheckpointException($"{_qzeros.File.Path}: tensor '{_qzeros.Info.Name}': group {group} of output {n} has zero point {zero}; a symmetric 4-bit checkpoint's are all 8");
    }

    // the eight nibbles of v, nibble i into the low half of byte i
    private static ulong Spread(uint v)
    {
        ulong x = v;
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFFUL;
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FFUL;
        return (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0FUL;
    }

    /// <inheritdoc/>
    public override void Release()
    {
        _qweight.File.Release(_qweight.Info);
        _scales.File.Release(_scales.Info);
        _qzeros.File.Release(_qzeros.Info);
    }
}
