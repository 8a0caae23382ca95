using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

/// <summary>bf16 panels: a column pair is one 64-byte line of 16 lanes, each lane (column k, column k + 1) of one row.</summary>
internal readonly unsafe struct Bf16Pair : IPanelWeights
{
    /// <inheritdoc/>
    public static int PairBytes => 64;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* pair, Vector512<uint> mask, out Vector512<float> even, out Vector512<float> odd)
    {
        var u = Vector512.Load((uint*)pair);
        even = (u << 16).AsSingle();
        odd = (u & mask).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadEven(byte* pair) => (Vector512.Load((uint*)pair) << 16).AsSingle();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* pair, int half, out Vector256<float> even, out Vector256<float> odd)
    {
        var u = Vector256.Load((uint*)pair + 8 * half);
        even = (u << 16).AsSingle();
        odd = (u & Vector256.Create(0xFFFF0000u)).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Get(byte* pair, int row, int odd) => Bf16.ToF32(((ushort*)pair)[2 * row + odd]);
}
