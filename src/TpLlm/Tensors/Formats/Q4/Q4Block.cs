using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Q4;

/// <summary>
/// 4-bit levels in [−8, 7] (stored as level + 8), one scale per group of 32 (GGUF's Q4_0 numbers). Block levels are
/// column pairs of 16 rows, one byte per row holding column k in its low nibble and column k + 1 in its high nibble:
/// a pair widens with one zero-extending load and two lookups of a 16-entry table (the permute reads only an index's
/// low four bits, so the low nibble needs no mask).
/// <para>Each group's scale is chosen to minimise the squared error: four candidates between −max/8 and max/7, each
/// scored with the least-squares scale of its levels, and one more round from the best — not llama.cpp's plain −max/8
/// (fortune-llama's perplexity: 10.19 against 10.33; a dense search of 80 candidates reaches 10.13 at twenty times
/// the cost, six 10.21).</para>
/// </summary>
internal readonly unsafe struct Q4Block : IQuantBlock
{
    private const int P = WeightMatrix.Panel;

    /// <inheritdoc/>
    public static string Name => "q4";

    /// <inheritdoc/>
    public static int LevelBytes => 16 * P;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd)
    {
        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(levels + pair * P));
        var table = Vector512.Create(-8f, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7); // a constant: loaded once, outside the loop
        even = Avx512F.PermuteVar16x32(table, v);
        odd = Avx512F.PermuteVar16x32(table, v >>> 4);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenStored(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd)
    {
        // integer work on ports 0/1 instead of two permutes on port 5, which bounded the one-token kernel
        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(levels + pair * P));
        even = Avx512F.ConvertToVector512Single(v & Vector512.Create(15));
        odd = Avx512F.ConvertToVector512Single(v >>> 4);
    }

    /// <inheritdoc/>
    public static int Offset => 8;

    /// <inheritdoc/>
    public static int Level(byte* levels, int row, int col) => ((levels[(col / 2) * P + row] >> (4 * (col & 1))) & 15) - 8;

    /// <inheritdoc/>
    public static void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values)
    {
        for (int c = 0; c < 32; c += 2) levels[(c / 2) * P + row] = (byte)((values[c] + 8) | ((values[c + 1] + 8) << 4));
    }

    /// <inheritdoc/>
    public static ushort Quantize(ReadOnlySpan<float> group, Span<sbyte> levels)
    {
        var g = new Group32(group);
        var (max, amax) = g.Extreme();
        if (amax == 0)
        {
            levels.Clear();
            return 0;
        }
        // each candidate's levels scored by the error of their least-squares scale, Σx² − (Σx·q)²/Σq²: the best is the
        // largest (Σx·q)²/Σq². Candidates put the largest weight on the wide end (−8), the narrow end (7), or inside.
        float bestScore = -1, bestD = 0;
        foreach (float m in (ReadOnlySpan<float>)[-8f, -7.5f, -7f, 7f])
            Try(g, max / m, ref bestScore, ref bestD);
        Try(g, bestD, ref bestScore, ref bestD); // once more from the best least-squares scale
        ushort bits = Half16.FromF32(bestD);
        Group32.Store(g.Levels(Half16.ToF32(bits), -8, 7), levels);
        return bits;
    }

    // levels at scale d; keeps their least-squares scale if they score best
    private static void Try(Group32 g, float d, ref float bestScore, ref float bestD)
    {
        var (xq, qq) = g.Dots(g.Levels(d, -8, 7));
        if (qq <= 0) return;
        float score = xq * xq / qq;
        if (score > bestScore) (bestScore, bestD) = (score, xq / qq);
    }
}
