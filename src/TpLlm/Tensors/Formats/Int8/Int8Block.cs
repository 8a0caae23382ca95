using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Int8;

/// <summary>
/// int8 levels in [−127, 127], symmetric, scale = max |w| / 127 per group of 32 (GGUF's Q8_0). Block levels are
/// column pairs of 16 rows: <c>[16 pairs][column k: 16 rows][column k+1: 16 rows]</c> bytes, so a pair widens with
/// two sign-extending loads.
/// </summary>
internal readonly unsafe struct Int8Block : IQuantBlock
{
    private const int P = WeightMatrix.Panel;

    /// <inheritdoc/>
    public static string Name => "int8";

    /// <inheritdoc/>
    public static int LevelBytes => 32 * P;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd)
    {
        even = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)levels + pair * 2 * P)));
        odd = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)levels + pair * 2 * P + P)));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenStored(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd) => Widen(levels, pair, out even, out odd);

    /// <inheritdoc/>
    public static int Offset => 0;

    /// <inheritdoc/>
    public static int Level(byte* levels, int row, int col) => ((sbyte*)levels)[(col / 2) * 2 * P + (col & 1) * P + row];

    /// <inheritdoc/>
    public static void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values)
    {
        for (int c = 0; c < 32; c++) ((sbyte*)levels)[(c / 2) * 2 * P + (c & 1) * P + row] = values[c];
    }

    /// <inheritdoc/>
    public static ushort Quantize(ReadOnlySpan<float> group, Span<sbyte> levels)
    {
        var g = new Group32(group);
        ushort bits = Half16.FromF32(g.Magnitude() / 127f);
        Group32.Store(g.Levels(Half16.ToF32(bits), -127, 127), levels);
        return bits;
    }
}
