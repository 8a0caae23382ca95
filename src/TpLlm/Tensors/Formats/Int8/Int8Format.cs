using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Int8;

/// <summary><c>--quantize int8</c>: 8-bit levels, one f16 scale per 32 weights (1.0625 bytes a weight).</summary>
public static class Int8Format
{
    /// <summary>The format.</summary>
    public static readonly IWeightFormat Instance = new BlockQuantizedFormat<Int8Block>();
}
