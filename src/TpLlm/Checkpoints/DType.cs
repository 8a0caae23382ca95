namespace TpLlm.Checkpoints;

/// <summary>Element types a safetensors header may declare.</summary>
public enum DType
{
    /// <summary>bfloat16: the upper half of an IEEE float32.</summary>
    BF16,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>IEEE single precision.</summary>
    F32,
    /// <summary>IEEE double precision (readable, not loadable as weights).</summary>
    F64,
    /// <summary>Signed 64-bit integer (readable, not loadable as weights).</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Boolean stored as one byte.</summary>
    Bool,
    /// <summary>GGUF's Q8_0: blocks of 32 weights, an f16 scale and 32 int8 levels (34 bytes).</summary>
    Q8_0,
    /// <summary>GGUF's Q4_0: blocks of 32 weights, an f16 scale and 32 4-bit levels offset by 8 (18 bytes).</summary>
    Q4_0,
    /// <summary>GGUF's Q4_K: super-blocks of 256 weights, 4-bit levels with 6-bit scales and mins in 8 sub-blocks (144 bytes).</summary>
    Q4_K,
    /// <summary>GGUF's Q5_K: as Q4_K with a fifth bit per level (176 bytes).</summary>
    Q5_K,
    /// <summary>GGUF's Q6_K: super-blocks of 256 weights, 6-bit levels with 8-bit scales in 16 sub-blocks (210 bytes).</summary>
    Q6_K,
}

/// <summary>Parsing and sizes of <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element (of a block for the block types: see <see cref="BlockElements"/>).</summary>
    public static int Size(this DType t) => t switch
    {
        DType.Q8_0 => 34,
        DType.Q4_0 => 18,
        DType.Q4_K => 144,
        DType.Q5_K => 176,
        DType.Q6_K => 210,
        DType.BF16 or DType.F16 or DType.I16 => 2,
        DType.F32 or DType.I32 => 4,
        DType.F64 or DType.I64 => 8,
        _ => 1,
    };

    /// <summary>Elements stored together: 32 for Q8_0 and Q4_0, 256 for the K-quants (a row holds whole blocks), 1 otherwise.</summary>
    public static int BlockElements(this DType t) => t switch
    {
        DType.Q8_0 or DType.Q4_0 => 32,
        DType.Q4_K or DType.Q5_K or DType.Q6_K => 256,
        _ => 1,
    };

    /// <summary>Bytes of <paramref name="elements"/> consecutive elements of a row (a multiple of <see cref="BlockElements"/>).</summary>
    public static long Bytes(this DType t, long elements) => elements / t.BlockElements() * t.Size();

    /// <summary>Parses the safetensors spelling ("BF16", "F32", ...); null when unknown.</summary>
    public static DType? Parse(string s) => s switch
    {
        "BF16" => DType.BF16,
        "F16" => DType.F16,
        "F32" => DType.F32,
        "F64" => DType.F64,
        "I64" => DType.I64,
        "I32" => DType.I32,
        "I16" => DType.I16,
        "I8" => DType.I8,
        "U8" => DType.U8,
        "BOOL" => DType.Bool,
        _ => null,
    };

    /// <summary>The safetensors spelling of a non-block type ("BF16", "I32", ...); null for GGUF's block types.</summary>
    public static string? SafetensorsName(this DType t) => t switch
    {
        DType.Bool => "BOOL",
        _ when t.BlockElements() > 1 => null,
        _ => t.ToString().ToUpperInvariant(),
    };

    /// <summary>True for the floating types TpLlm loads as weights.</summary>
    public static bool IsWeightType(this DType t) => t is DType.BF16 or DType.F16 or DType.F32 || t.BlockElements() > 1;
}
