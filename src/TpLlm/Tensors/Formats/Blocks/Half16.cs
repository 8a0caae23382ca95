using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>IEEE half-precision scales (as GGUF stores them) to f32, exactly, without F16C instructions (.NET has none).</summary>
internal static unsafe class Half16
{
    /// <summary>One half to f32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToF32(ushort h) => (float)BitConverter.UInt16BitsToHalf(h);

    /// <summary>The nearest half to <paramref name="f"/> (ties to even), as bits.</summary>
    public static ushort FromF32(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>
    /// 16 halves to f32: the magnitude's bits moved into an f32's and multiplied by 2^112 (exact for normal and subnormal
    /// halves and zero; scales are never infinite or NaN), the sign put back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToF32x16(ushort* h)
    {
        var u = Avx512F.ConvertToVector512UInt32(Vector256.Load(h));
        var magnitude = ((u & Vector512.Create(0x7FFFu)) << 13).AsSingle() * Vector512.Create(5.192296858534828e33f); // 2^112
        return (magnitude.AsUInt32() | ((u & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }
}
