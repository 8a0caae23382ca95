using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Int8;

/// <summary>
/// int8 levels in [−128, 127], symmetric, scale = max |w| / 127 per group of 32 (GGUF's Q8_0), stored as level + 128.
/// Block levels are eight quads of four columns, each 16 rows × 4 bytes (byte 4r + j of quad i is row r, column
/// 4i + j): one 64-byte load meets four activations of every row in its 32-bit lane. The byte multiply-add
/// (<c>vpmaddubsw</c>: unsigned × signed bytes, adjacent pairs summed into words) takes the stored bytes as they are,
/// with no widening; a word multiply-add by one (<c>vpmaddwd</c>) then leaves each row's quad sum in its lane: 64
/// multiply-adds in three instructions, where f32 FMAs (bf16's kernel) take four, and so do words (<c>vpmaddwd</c>
/// against int16 activations, then an add) on processors without VNNI.
/// Unsigned weights up to 255 against the pair-bounded activations of <see cref="ActivationQuantizer"/>
/// (|q₀| + |q₁| ≤ 128 per column pair) keep every word within 255 · 128 &lt; 2¹⁵: nothing saturates, and
/// <see cref="QuantizedProduct{TQ}"/> takes 128 · Σq off once per block. On the 256-bit path with AVX-VNNI, four-token
/// tiles take <c>vpdpbusd</c> instead, which sums a row's four products of a quad into its lane in one instruction (the
/// 512-bit tiles do not: beside their 512-bit work, 256-bit <c>vpdpbusd</c> measured slower than these three).
/// </summary>
internal readonly unsafe struct Int8Block : IQuantBlock
{
    private const int P = WeightMatrix.Panel;
    private const int Quad = 4 * P; // bytes of four columns of 16 rows

    /// <inheritdoc/>
    public static string Name => "int8";

    /// <inheritdoc/>
    public static int LevelBytes => 32 * P;

    /// <inheritdoc/>
    public static int Offset => 128;

    /// <inheritdoc/>
    public static bool PairBoundActivations => true;

    /// <inheritdoc/>
    public static bool TakesVnni => true;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(byte* levels, byte* xq)
    {
        Vector512<int> a0 = default, a1 = default; // two chains
        for (int i = 0; i < 8; i += 2)
        {
            a0 += Quad512(Vector512.Load(levels + i * Quad), xq + 4 * i);
            a1 += Quad512(Vector512.Load(levels + (i + 1) * Quad), xq + 4 * i + 4);
        }
        return a0 + a1;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x4(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3)
    {
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq;
        for (int i = 0; i < 8; i++)
        {
            var w = Vector512.Load(levels + i * Quad);
            a0 += Quad512(w, xq + 4 * i);
            a1 += Quad512(w, x1 + 4 * i);
            a2 += Quad512(w, x2 + 4 * i);
            a3 += Quad512(w, x3 + 4 * i);
        }
        (s0, s1, s2, s3) = (a0, a1, a2, a3);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x8(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3,
        out Vector512<int> s4, out Vector512<int> s5, out Vector512<int> s6, out Vector512<int> s7)
    {
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        byte* x4 = xq + 4 * ldq;
        // the eight quads written out: constant offsets, no loop counter beside the multiply-adds
        Quads8(levels, xq, x4, ldq, 0, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 1, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 2, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 3, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 4, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 5, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 6, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        Quads8(levels, xq, x4, ldq, 7, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        (s0, s1, s2, s3, s4, s5, s6, s7) = (a0, a1, a2, a3, a4, a5, a6, a7);
    }

    // quad i against eight tokens: the weights loaded once; tokens at xq + t·ldq (t < 4) and x4 + (t − 4)·ldq
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quads8(byte* levels, byte* xq, byte* x4, int ldq, int i, ref Vector512<int> a0, ref Vector512<int> a1, ref Vector512<int> a2,
        ref Vector512<int> a3, ref Vector512<int> a4, ref Vector512<int> a5, ref Vector512<int> a6, ref Vector512<int> a7)
    {
        var w = Vector512.Load(levels + i * Quad);
        a0 += Quad512(w, xq + 4 * i);
        a1 += Quad512(w, xq + ldq + 4 * i);
        a2 += Quad512(w, xq + 2 * ldq + 4 * i);
        a3 += Quad512(w, xq + 3 * ldq + 4 * i);
        a4 += Quad512(w, x4 + 4 * i);
        a5 += Quad512(w, x4 + ldq + 4 * i);
        a6 += Quad512(w, x4 + 2 * ldq + 4 * i);
        a7 += Quad512(w, x4 + 3 * ldq + 4 * i);
    }

    // each row's Σ stored · q over a quad: four activations broadcast to every row's lane
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad512(Vector512<byte> w, byte* xq) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)xq).AsSByte()), Vector512<short>.One);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot256(byte* levels, byte* xq, int half)
    {
        Vector256<int> acc = default;
        for (int i = 0; i < 8; i++) acc += Quad256(Vector256.Load(levels + i * Quad + 32 * half), xq + 4 * i);
        return acc;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot256x4(byte* levels, byte* xq, int ldq, int half, bool vnni, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
    {
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq;
        if (vnni && AvxVnni.IsSupported)
        {
            // vpdpbusd: a row's four products of a quad summed into its lane in one instruction
            for (int i = 0; i < 8; i++)
            {
                var w = Vector256.Load(levels + i * Quad + 32 * half);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, w, Vector256.Create(*(int*)(xq + 4 * i)).AsSByte());
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, w, Vector256.Create(*(int*)(x1 + 4 * i)).AsSByte());
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, w, Vector256.Create(*(int*)(x2 + 4 * i)).AsSByte());
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, w, Vector256.Create(*(int*)(x3 + 4 * i)).AsSByte());
            }
        }
        else
        {
            for (int i = 0; i < 8; i++)
            {
                var w = Vector256.Load(levels + i * Quad + 32 * half);
                a0 += Quad256(w, xq + 4 * i);
                a1 += Quad256(w, x1 + 4 * i);
                a2 += Quad256(w, x2 + 4 * i);
                a3 += Quad256(w, x3 + 4 * i);
            }
        }
        (s0, s1, s2, s3) = (a0, a1, a2, a3);
    }

    // Quad512 in 256-bit vectors: eight rows' Σ stored · q over a quad
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Quad256(Vector256<byte> w, byte* xq) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w, Vector256.Create(*(int*)xq).AsSByte()), Vector256<short>.One);

    /// <inheritdoc/>
    public static int Level(byte* levels, int row, int col) => levels[At(row, col)] - Offset;

    /// <inheritdoc/>
    public static void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values)
    {
        // columns 4i to 4i + 3 are the row's four bytes of quad i: one 32-bit store per quad, each byte + 128
        fixed (sbyte* v = values)
            for (int i = 0; i < 8; i++) *(uint*)(levels + i * Quad + 4 * row) = ((uint*)v)[i] ^ 0x80808080u;
    }

    // the byte of (row, col): quad col / 4, the row's four bytes, column col % 4
    private static int At(int row, int col) => col / 4 * Quad + 4 * row + (col & 3);

    /// <inheritdoc/>
    public static Checkpoints.DType FileBlock => Checkpoints.DType.Q8_0;

    /// <inheritdoc/>
    public static void Quantize16(ReadOnlySpan<float> groups, Span<ushort> scales, Span<sbyte> levels)
    {
        for (int j = 0; j < 16; j++) scales[j] = Quantize(groups.Slice(32 * j, 32), levels.Slice(32 * j, 32)); // one step each: nothing to share
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
