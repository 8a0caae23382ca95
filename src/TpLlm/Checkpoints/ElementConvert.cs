using System.Runtime.InteropServices;
using TpLlm.Tensors;

namespace TpLlm.Checkpoints;

/// <summary>Converts raw little-endian checkpoint bytes into f32 or bf16 storage.</summary>
public static class ElementConvert
{
    /// <summary>Converts <paramref name="src"/> of <paramref name="dtype"/> into f32.</summary>
    public static void ToF32(DType dtype, ReadOnlySpan<byte> src, Span<float> dst, string where)
    {
        switch (dtype)
        {
            case DType.BF16:
                Bf16.ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst);
                break;
            case DType.F16:
                var h = MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < h.Length; i++) dst[i] = (float)h[i];
                break;
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            default:
                throw new CheckpointException($"{where}: dtype {dtype} cannot be loaded as weights (BF16, F16 or F32 expected)");
        }
    }
}
