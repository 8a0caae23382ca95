using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors;

/// <summary>bfloat16 ↔ float32. A bf16 is the upper 16 bits of an f32.</summary>
public static class Bf16
{
    /// <summary>Widens one bf16 to f32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToF32(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary>Rounds an f32 to the nearest bf16 (ties to even; NaN stays NaN).</summary>
    public static ushort FromF32(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40);
        u += 0x7FFF + ((u >> 16) & 1);
        return (ushort)(u >> 16);
    }

    /// <summary>Widens a span of bf16 into f32: <c>dst[i] = src[i] &lt;&lt; 16</c>.</summary>
    public static void ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"destination {dst.Length} < source {src.Length}");
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref ushort s = ref MemoryMarshal.GetReference(src);
            ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
            for (; i + 16 <= src.Length; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref s, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < src.Length; i++) dst[i] = ToF32(src[i]);
    }
}
