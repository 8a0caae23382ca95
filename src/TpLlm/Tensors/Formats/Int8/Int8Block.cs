using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Int8;

/// <summary>
/// int8 levels in [−127, 127], symmetric, scale = max |w| / 127 per group of 32 (GGUF's Q8_0). Block levels are 16
/// column pairs of 16 rows × 2 bytes (byte 2r + j of pair i is row r, column 2i + j): a pair sign-extends to 16
/// rows' two words in one instruction, and a word multiply-add (<c>vpmaddwd</c>) against the pair's two int16
/// activations leaves each row's sum in its lane. Words, not bytes: the byte multiply-add needs one unsigned side,
/// which signed weights and activations only reach with a sign shuffle per token (measured slower); int16
/// activations lose nothing measurable.
/// </summary>
internal readonly unsafe struct Int8Block : IQuantBlock
{
    private const int P = WeightMatrix.Panel;
    private const int Pair = 2 * P; // bytes of two columns of 16 rows

    /// <inheritdoc/>
    public static string Name => "int8";

    /// <inheritdoc/>
    public static int LevelBytes => 32 * P;

    /// <inheritdoc/>
    public static int Offset => 0;

    /// <inheritdoc/>
    public static bool WideActivations => true;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(byte* levels, byte* xq)
    {
        Vector512<int> a0 = default, a1 = default; // two chains
        for (int i = 0; i < 16; i += 2)
        {
            a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)levels + i * Pair)), Vector512.Create(*(int*)(xq + 4 * i)).AsInt16());
            a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)levels + (i + 1) * Pair)), Vector512.Create(*(int*)(xq + 4 * i + 4)).AsInt16());
        }
        return a0 + a1;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x4(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3)
    {
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq;
        for (int i = 0; i < 16; i++)
        {
            var w = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)levels + i * Pair));
            a0 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(xq + 4 * i)).AsInt16());
            a1 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x1 + 4 * i)).AsInt16());
            a2 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x2 + 4 * i)).AsInt16());
            a3 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x3 + 4 * i)).AsInt16());
        }
        (s0, s1, s2, s3) = (a0, a1, a2, a3);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x8(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3,
        out Vector512<int> s4, out Vector512<int> s5, out Vector512<int> s6, out Vector512<int> s7)
    {
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq, x4 = x3 + ldq, x5 = x4 + ldq, x6 = x5 + ldq, x7 = x6 + ldq;
        for (int i = 0; i < 16; i++)
        {
            var w = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)levels + i * Pair)); // widened once for eight tokens
            a0 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(xq + 4 * i)).AsInt16());
            a1 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x1 + 4 * i)).AsInt16());
            a2 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x2 + 4 * i)).AsInt16());
            a3 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x3 + 4 * i)).AsInt16());
            a4 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x4 + 4 * i)).AsInt16());
            a5 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x5 + 4 * i)).AsInt16());
            a6 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x6 + 4 * i)).AsInt16());
            a7 += Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)(x7 + 4 * i)).AsInt16());
        }
        (s0, s1, s2, s3, s4, s5, s6, s7) = (a0, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot256(byte* levels, byte* xq, int half)
    {
        Vector256<int> acc = default;
        for (int i = 0; i < 16; i++)
            acc += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)levels + i * Pair + 16 * half)), Vector256.Create(*(int*)(xq + 4 * i)).AsInt16());
        return acc;
    }

    /// <inheritdoc/>
    public static int Level(byte* levels, int row, int col) => ((sbyte*)levels)[At(row, col)];

    /// <inheritdoc/>
    public static void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values)
    {
        // columns 2p and 2p + 1 are the row's two bytes of pair p: one 16-bit store per pair
        fixed (sbyte* v = values)
            for (int p = 0; p < 16; p++) *(ushort*)(levels + p * Pair + 2 * row) = ((ushort*)v)[p];
    }

    // the byte of (row, col): pair col / 2, the row's two bytes, column col % 2
    private static int At(int row, int col) => col / 2 * Pair + 2 * row + (col & 1);

    /// <inheritdoc/>
    public static Checkpoints.DType FileBlock => Checkpoints.DType.Q8_0;

    /// <inheritdoc/>
    public static (ushort A, ushort B) QuantizePair(ReadOnlySpan<float> a, Span<sbyte> levelsA, ReadOnlySpan<float> b, Span<sbyte> levelsB) =>
        (Quantize(a, levelsA), Quantize(b, levelsB)); // one step each: nothing to interleave

    /// <inheritdoc/>
    public static ushort Quantize(ReadOnlySpan<float> group, Span<sbyte> levels)
    {
        var g = new Group32(group);
        ushort bits = Half16.FromF32(g.Magnitude() / 127f);
        Group32.Store(g.Levels(Half16.ToF32(bits), -127, 127), levels);
        return bits;
    }
}
