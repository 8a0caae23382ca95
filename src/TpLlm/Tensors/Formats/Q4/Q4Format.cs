using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Q4;

/// <summary><c>--quantize q4</c>: 4-bit levels, one f16 scale per 32 weights (0.5625 bytes a weight).</summary>
public static class Q4Format
{
    /// <summary>The format.</summary>
    public static readonly IWeightFormat Instance = new BlockQuantizedFormat<Q4Block>();
}
