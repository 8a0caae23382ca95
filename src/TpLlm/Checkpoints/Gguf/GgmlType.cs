namespace TpLlm.Checkpoints.Gguf;

/// <summary>
/// ggml's tensor element types as GGUF files number them, with each type's block: elements per block and bytes per
/// block (ggml's <c>type_traits</c>), so that every tensor's size is checked even when its type is not loadable.
/// </summary>
public static class GgmlType
{
    private static readonly Dictionary<uint, (string Name, int BlockElements, int BlockBytes)> Types = new()
    {
        [0] = ("F32", 1, 4), [1] = ("F16", 1, 2), [2] = ("Q4_0", 32, 18), [3] = ("Q4_1", 32, 20),
        [6] = ("Q5_0", 32, 22), [7] = ("Q5_1", 32, 24), [8] = ("Q8_0", 32, 34), [9] = ("Q8_1", 32, 36),
        [10] = ("Q2_K", 256, 84), [11] = ("Q3_K", 256, 110), [12] = ("Q4_K", 256, 144), [13] = ("Q5_K", 256, 176),
        [14] = ("Q6_K", 256, 210), [15] = ("Q8_K", 256, 292), [16] = ("IQ2_XXS", 256, 66), [17] = ("IQ2_XS", 256, 74),
        [18] = ("IQ3_XXS", 256, 98), [19] = ("IQ1_S", 256, 50), [20] = ("IQ4_NL", 32, 18), [21] = ("IQ3_S", 256, 110),
        [22] = ("IQ2_S", 256, 82), [23] = ("IQ4_XS", 256, 136), [24] = ("I8", 1, 1), [25] = ("I16", 1, 2),
        [26] = ("I32", 1, 4), [27] = ("I64", 1, 8), [28] = ("F64", 1, 8), [29] = ("IQ1_M", 256, 56), [30] = ("BF16", 1, 2),
        [34] = ("TQ1_0", 256, 54), [35] = ("TQ2_0", 256, 66), [39] = ("MXFP4", 32, 17),
    };

    /// <summary>The ggml type id of F32.</summary>
    public const uint F32 = 0;
    /// <summary>The ggml type id of F16.</summary>
    public const uint F16 = 1;
    /// <summary>The ggml type id of Q4_0.</summary>
    public const uint Q4_0 = 2;
    /// <summary>The ggml type id of Q8_0.</summary>
    public const uint Q8_0 = 8;
    /// <summary>The ggml type id of BF16.</summary>
    public const uint BF16 = 30;

    /// <summary>The type's name, elements per block and bytes per block; false for an id ggml does not define.</summary>
    public static bool TryGet(uint type, out string name, out int blockElements, out int blockBytes)
    {
        if (Types.TryGetValue(type, out var t))
        {
            (name, blockElements, blockBytes) = t;
            return true;
        }
        (name, blockElements, blockBytes) = ($"type {type}", 0, 0);
        return false;
    }

    /// <summary>The name of a type id ("Q4_K"), or "type N" for an unknown one.</summary>
    public static string Name(uint type) => TryGet(type, out var name, out _, out _) ? name : $"type {type}";

    /// <summary>The <see cref="DType"/> TpLlm loads the type as, or null for types it does not read.</summary>
    public static DType? ToDType(uint type) => type switch
    {
        F32 => DType.F32,
        F16 => DType.F16,
        BF16 => DType.BF16,
        Q8_0 => DType.Q8_0,
        Q4_0 => DType.Q4_0,
        12 => DType.Q4_K,
        13 => DType.Q5_K,
        14 => DType.Q6_K,
        _ => null,
    };
}
