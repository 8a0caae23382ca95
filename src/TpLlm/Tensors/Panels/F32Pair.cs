using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

/// <summary>f32 panels: a column pair is two 64-byte lines, column k of the 16 rows, then column k + 1.</summary>
internal readonly unsafe struct F32Pair : IPanelWeights
{
    /// <inheritdoc/>
    public static int PairBytes => 128;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* pair, Vector512<uint> mask, out Vector512<float> even, out Vector512<float> odd)
    {
        even = Vector512.Load((float*)pair);
        odd = Vector512.Load((float*)pair + 16);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadEven(byte* pair) => Vector512.Load((float*)pair);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(byte* pair, int half, out Vector256<float> even, out Vector256<float> odd)
    {
        even = Vector256.Load((float*)pair + 8 * half);
        odd = Vector256.Load((float*)pair + 16 + 8 * half);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Get(byte* pair, int row, int odd) => ((float*)pair)[16 * odd + row];
}
