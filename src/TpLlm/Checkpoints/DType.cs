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
}

/// <summary>Parsing and sizes of <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType t) => t switch
    {
        DType.BF16 or DType.F16 or DType.I16 => 2,
        DType.F32 or DType.I32 => 4,
        DType.F64 or DType.I64 => 8,
        _ => 1,
    };

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

    /// <summary>True for the floating types TpLlm loads as weights.</summary>
    public static bool IsWeightType(this DType t) => t is DType.BF16 or DType.F16 or DType.F32;
}
