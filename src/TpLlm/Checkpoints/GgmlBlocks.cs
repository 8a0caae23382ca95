using System.Runtime.InteropServices;

namespace TpLlm.Checkpoints;

/// <summary>ggml's blocks of 32 weights as GGUF files lay them out: the one reader of their bytes.</summary>
internal static class GgmlBlocks
{
    /// <summary>
    /// Reads one <see cref="DType.Q8_0"/> block (f16 d, int8 qs[32]) or <see cref="DType.Q4_0"/> block (f16 d, uint8
    /// qs[16]: element j the low nibble of qs[j], element j + 16 its high nibble, each − 8) into its 32 levels; returns
    /// the f16 bits of d (weight = d · level).
    /// </summary>
    public static ushort Read(DType type, ReadOnlySpan<byte> block, Span<sbyte> levels)
    {
        if (type == DType.Q8_0) MemoryMarshal.Cast<byte, sbyte>(block.Slice(2, 32)).CopyTo(levels);
        else
            for (int j = 0; j < 16; j++)
            {
                levels[j] = (sbyte)((block[2 + j] & 0xF) - 8);
                levels[j + 16] = (sbyte)((block[2 + j] >> 4) - 8);
            }
        return MemoryMarshal.Read<ushort>(block);
    }
}
