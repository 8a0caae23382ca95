using System.Runtime.InteropServices;
using TpLlm.Tensors;

namespace TpLlm.Checkpoints;

/// <summary>Converts raw little-endian checkpoint bytes into f32 (GGUF's Q8_0 and Q4_0 blocks: scale × level).</summary>
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
            case DType.Q8_0 or DType.Q4_0:
                Dequantize(dtype, src, dst);
                break;
            case DType.Q4_K or DType.Q5_K or DType.Q6_K:
                KQuants.Dequantize(dtype, src, dst);
                break;
            default:
                throw new CheckpointException($"{where}: dtype {dtype} cannot be loaded as weights (BF16, F16, F32 or a GGUF block type expected)");
        }
    }

    /// <summary>The blocks of <paramref name="src"/> (whole ones) as f32: GGUF's <c>d · q</c> (Q8_0) and <c>d · (nibble − 8)</c> (Q4_0, low nibbles first).</summary>
    private static void Dequantize(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int bytes = dtype.Size(), blocks = src.Length / bytes;
        Span<sbyte> levels = stackalloc sbyte[32];
        for (int b = 0; b < blocks && b * 32 < dst.Length; b++)
        {
            float d = (float)BitConverter.UInt16BitsToHalf(GgmlBlocks.Read(dtype, src.Slice(b * bytes, bytes), levels));
            var o = dst.Slice(b * 32, Math.Min(32, dst.Length - b * 32));
            for (int j = 0; j < o.Length; j++) o[j] = d * levels[j];
        }
    }
}
