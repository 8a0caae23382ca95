using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// IEEE half-precision scales (as GGUF stores them) to and from f32, exactly, in a few integer operations: .NET has no
/// F16C instructions, and its <see cref="Half"/> conversions are precompiled library code that, called between AVX-512
/// kernels, cost about 270 ns each on the Xeon this was measured on (a transition penalty), against a few here.
/// </summary>
internal static unsafe class Half16
{
    /// <summary>One half to f32 (exact: the magnitude's bits moved into an f32's, times 2^112).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToF32(ushort h)
    {
        float magnitude = BitConverter.UInt32BitsToSingle((uint)(h & 0x7FFF) << 13) * 5.192296858534828e33f; // 2^112
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(magnitude) | ((uint)(h & 0x8000) << 16));
    }

    /// <summary>
    /// The nearest half to <paramref name="f"/> (ties to even; overflow to infinity, NaN stays NaN), as bits — the
    /// rounding of F16C's <c>vcvtps2ph</c>, after F. Giesen's <c>float_to_half_fast3_rtne</c>.
    /// </summary>
    public static ushort FromF32(float f)
    {
        uint x = BitConverter.SingleToUInt32Bits(f);
        uint sign = x & 0x80000000u, a = x ^ sign, o;
        if (a >= (127u + 16) << 23) o = a > 255u << 23 ? 0x7E00u : 0x7C00u; // NaN, or too large: infinity
        else if (a < 113u << 23)
        {
            // a subnormal half or zero: let the f32 adder round, against a magic number that puts the half's units in place
            const uint magic = ((127u - 15) + (23 - 10) + 1) << 23;
            o = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(a) + BitConverter.UInt32BitsToSingle(magic)) - magic;
        }
        else
        {
            uint odd = (a >> 13) & 1; // ties to even
            a += unchecked((uint)((15 - 127) << 23)) + 0xFFF + odd;
            o = a >> 13;
        }
        return (ushort)(o | (sign >> 16));
    }

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

    /// <summary><see cref="ToF32x16"/> for 8 halves, in 256-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToF32x8(ushort* h)
    {
        var u = Avx2.ConvertToVector256Int32(Vector128.Load(h)).AsUInt32();
        var magnitude = ((u & Vector256.Create(0x7FFFu)) << 13).AsSingle() * Vector256.Create(5.192296858534828e33f); // 2^112
        return (magnitude.AsUInt32() | ((u & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }
}
