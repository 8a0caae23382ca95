using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TpLlm.Tensors.Formats.Blocks;

namespace TpLlm.Tensors.Formats.Q4;

/// <summary>
/// 4-bit levels in [−8, 7] (stored as level + 8), one scale per group of 32 (GGUF's Q4_0 numbers). Block levels are
/// four slabs of eight columns, each slab 16 rows × 4 bytes: byte b of row r holds column 8s + b in its low nibble and
/// column 8s + 4 + b in its high nibble. So a slab is one 64-byte load whose low and high nibbles, masked, meet four
/// activations of a row in each 32-bit lane: byte multiply-adds (<c>vpmaddubsw</c>: unsigned nibbles × signed int8
/// activations) then word multiply-adds leave each row's sum in its lane — about seven instructions for 128 weights.
/// <para>Each group's scale is chosen to minimise the squared error: four candidates between −max/8 and max/7, each
/// scored with the least-squares scale of its levels, and one more round from the best — not llama.cpp's plain −max/8
/// (fortune-llama's perplexity: 10.19 against 10.33; a dense search of 80 candidates reaches 10.13 at twenty times
/// the cost, six 10.21).</para>
/// </summary>
internal readonly unsafe struct Q4Block : IQuantBlock
{
    private const int P = WeightMatrix.Panel;
    private const int Slab = 4 * P; // bytes of eight columns of 16 rows

    /// <inheritdoc/>
    public static string Name => "q4";

    /// <inheritdoc/>
    public static int LevelBytes => 16 * P;

    /// <inheritdoc/>
    public static int Offset => 8;

    /// <inheritdoc/>
    public static bool PairBoundActivations => false;

    /// <inheritdoc/>
    public static bool TakesVnni => false; // see Dot256x4

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(byte* levels, byte* xq)
    {
        var mask = Vector512.Create((byte)15);
        Vector512<short> acc = default; // per word ≤ 16 · 15 · 127: no overflow
        for (int s = 0; s < 4; s++)
        {
            var v = Vector512.Load(levels + s * Slab);
            var lo = v & mask;
            var hi = (v.AsUInt16() >>> 4).AsByte() & mask;
            acc += Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)(xq + 8 * s)).AsSByte());
            acc += Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(xq + 8 * s + 4)).AsSByte());
        }
        return Avx512BW.MultiplyAddAdjacent(acc, Vector512<short>.One);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x4(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3)
    {
        var mask = Vector512.Create((byte)15);
        Vector512<short> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq;
        for (int s = 0; s < 4; s++)
        {
            var v = Vector512.Load(levels + s * Slab);
            var lo = v & mask;
            var hi = (v.AsUInt16() >>> 4).AsByte() & mask;
            a0 += Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)(xq + 8 * s)).AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(xq + 8 * s + 4)).AsSByte());
            a1 += Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)(x1 + 8 * s)).AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(x1 + 8 * s + 4)).AsSByte());
            a2 += Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)(x2 + 8 * s)).AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(x2 + 8 * s + 4)).AsSByte());
            a3 += Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)(x3 + 8 * s)).AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(x3 + 8 * s + 4)).AsSByte());
        }
        s0 = Avx512BW.MultiplyAddAdjacent(a0, Vector512<short>.One);
        s1 = Avx512BW.MultiplyAddAdjacent(a1, Vector512<short>.One);
        s2 = Avx512BW.MultiplyAddAdjacent(a2, Vector512<short>.One);
        s3 = Avx512BW.MultiplyAddAdjacent(a3, Vector512<short>.One);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot512x8(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3,
        out Vector512<int> s4, out Vector512<int> s5, out Vector512<int> s6, out Vector512<int> s7)
    {
        // unpacking a slab is three operations against eight multiply-adds: nothing worth sharing wider
        Dot512x4(levels, xq, ldq, out s0, out s1, out s2, out s3);
        Dot512x4(levels, xq + 4 * ldq, ldq, out s4, out s5, out s6, out s7);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot256(byte* levels, byte* xq, int half)
    {
        var mask = Vector256.Create((byte)15);
        Vector256<short> acc = default;
        for (int s = 0; s < 4; s++)
        {
            var v = Vector256.Load(levels + s * Slab + 32 * half);
            var lo = v & mask;
            var hi = (v.AsUInt16() >>> 4).AsByte() & mask;
            acc += Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)(xq + 8 * s)).AsSByte());
            acc += Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(xq + 8 * s + 4)).AsSByte());
        }
        return Avx2.MultiplyAddAdjacent(acc, Vector256<short>.One);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Dot256x4(byte* levels, byte* xq, int ldq, int half, bool vnni, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3)
    {
        // VNNI is not taken (TakesVnni): its vpdpbusd makes as many products an instruction as a byte multiply-add and its
        // word add, whose words wait for one word multiply-add a group
        var mask = Vector256.Create((byte)15);
        Vector256<short> a0 = default, a1 = default, a2 = default, a3 = default;
        byte* x1 = xq + ldq, x2 = x1 + ldq, x3 = x2 + ldq;
        for (int s = 0; s < 4; s++)
        {
            var v = Vector256.Load(levels + s * Slab + 32 * half);
            var lo = v & mask;
            var hi = (v.AsUInt16() >>> 4).AsByte() & mask;
            a0 += Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)(xq + 8 * s)).AsSByte()) + Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(xq + 8 * s + 4)).AsSByte());
            a1 += Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)(x1 + 8 * s)).AsSByte()) + Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(x1 + 8 * s + 4)).AsSByte());
            a2 += Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)(x2 + 8 * s)).AsSByte()) + Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(x2 + 8 * s + 4)).AsSByte());
            a3 += Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)(x3 + 8 * s)).AsSByte()) + Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(x3 + 8 * s + 4)).AsSByte());
        }
        s0 = Avx2.MultiplyAddAdjacent(a0, Vector256<short>.One);
        s1 = Avx2.MultiplyAddAdjacent(a1, Vector256<short>.One);
        s2 = Avx2.MultiplyAddAdjacent(a2, Vector256<short>.One);
        s3 = Avx2.MultiplyAddAdjacent(a3, Vector256<short>.One);
    }

    /// <inheritdoc/>
    public static int Level(byte* levels, int row, int col) => ((levels[At(row, col)] >> (col & 4)) & 15) - 8;

    /// <inheritdoc/>
    public static void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values)
    {
        // slab s's four bytes of the row: columns 8s…8s+3 (low nibbles) and 8s+4…8s+7 (high), offset by 8 — in each
        // 64-bit lane of the 32 levels, the low half | the high half << 4
        var u = (Vector256.Create(values) + Vector256.Create((sbyte)8)).AsUInt64();
        var packed = (u & Vector256.Create(0xFFFF_FFFFUL)) | ((u >>> 32) << 4);
        for (int s = 0; s < 4; s++) *(uint*)(levels + s * Slab + 4 * row) = (uint)packed.GetElement(s);
    }

    // the byte of (row, col): slab col / 8, the row's lane, byte col % 4
    private static int At(int row, int col) => col / 8 * Slab + 4 * row + (col & 3);

    /// <inheritdoc/>
    public static Checkpoints.DType FileBlock => Checkpoints.DType.Q4_0;

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
        foreach (float m in Candidates)
            Try(g, max / m, ref bestScore, ref bestD);
        Try(g, bestD, ref bestScore, ref bestD); // once more from the best least-squares scale
        return Store(g, bestD, levels);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Quantize16(ReadOnlySpan<float> groups, Span<ushort> scales, Span<sbyte> levels)
    {
        if (!Avx512F.IsSupported)
        {
            for (int j = 0; j < 16; j++) scales[j] = Quantize(groups.Slice(32 * j, 32), levels.Slice(32 * j, 32));
            return;
        }
        // Quantize's search with lane j holding group j: each step one vector operation for the sixteen, where one
        // group at a time spends horizontal sums and a branch a step. The same f32 operations in the same order per
        // group (the sums in Group32's tree), so the same choices bit for bit (tested).
        float* col = stackalloc float[32 * 16]; // col[16i + j]: group j's element i
        float* best = stackalloc float[16];
        fixed (float* x = groups)
        {
            var index = Vector256.Create(0, 32, 64, 96, 128, 160, 192, 224); // groups 0–7 (and, from x + 256, 8–15)
            var amax = Vector512<float>.Zero;
            for (int i = 0; i < 32; i++)
            {
                var c = Vector512.Create(Avx2.GatherVector256(x + i, index, 4), Avx2.GatherVector256(x + 256 + i, index, 4));
                c.Store(col + 16 * i);
                amax = Vector512.MaxNative(amax, Vector512.Abs(c));
            }
            var max = Vector512<float>.Zero; // the first element of largest magnitude
            for (int i = 31; i >= 0; i--)
            {
                var c = Vector512.Load(col + 16 * i);
                max = Vector512.ConditionalSelect(Vector512.Equals(Vector512.Abs(c), amax), c, max);
            }
            Vector512<float> bestScore = Vector512.Create(-1f), bestD = Vector512<float>.Zero;
            foreach (float m in Candidates)
                Try16(col, max / Vector512.Create(m), ref bestScore, ref bestD);
            Try16(col, bestD, ref bestScore, ref bestD);
            bestD.Store(best);
        }
        // a group of zeros kept d = 0, which stores zero levels and scale bits 0, as Quantize returns for it
        for (int j = 0; j < 16; j++) scales[j] = Store(new Group32(groups.Slice(32 * j, 32)), best[j], levels.Slice(32 * j, 32));
    }

    // Try for sixteen groups: levels at scales d, Σx·q and Σq² summed as Group32.Dots sums them (its 16 lanes halved to
    // 8 by Half, then lanes k and k + 4, then (0 + 1) + (2 + 3)), the best kept per lane
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Try16(float* col, Vector512<float> d, ref Vector512<float> bestScore, ref Vector512<float> bestD)
    {
        var inv = Vector512.ConditionalSelect(Vector512.Equals(d, Vector512<float>.Zero), Vector512<float>.Zero, Vector512<float>.One / d);
        var (x0, q0) = Half(col, 0, inv);
        var (x1, q1) = Half(col, 1, inv);
        var (x2, q2) = Half(col, 2, inv);
        var (x3, q3) = Half(col, 3, inv);
        var (x4, q4) = Half(col, 4, inv);
        var (x5, q5) = Half(col, 5, inv);
        var (x6, q6) = Half(col, 6, inv);
        var (x7, q7) = Half(col, 7, inv);
        var xq = ((x0 + x4) + (x1 + x5)) + ((x2 + x6) + (x3 + x7));
        var qq = ((q0 + q4) + (q1 + q5)) + ((q2 + q6) + (q3 + q7));
        var score = xq * xq / qq;
        var better = Vector512.GreaterThan(qq, Vector512<float>.Zero) & Vector512.GreaterThan(score, bestScore);
        bestScore = Vector512.ConditionalSelect(better, score, bestScore);
        bestD = Vector512.ConditionalSelect(better, xq / qq, bestD);
    }

    // lanes k and k + 8 of Dots' vectors (elements k with k + 16, and k + 8 with k + 24), added as its first halving adds them
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Xq, Vector512<float> Qq) Half(float* col, int k, Vector512<float> inv)
    {
        Vector512<float> x0 = Vector512.Load(col + 16 * k), x1 = Vector512.Load(col + 16 * (k + 16));
        Vector512<float> x2 = Vector512.Load(col + 16 * (k + 8)), x3 = Vector512.Load(col + 16 * (k + 24));
        Vector512<float> q0 = Level(x0, inv), q1 = Level(x1, inv), q2 = Level(x2, inv), q3 = Level(x3, inv);
        return (Vector512.FusedMultiplyAdd(x1, q1, x0 * q0) + Vector512.FusedMultiplyAdd(x3, q3, x2 * q2),
            Vector512.FusedMultiplyAdd(q1, q1, q0 * q0) + Vector512.FusedMultiplyAdd(q3, q3, q2 * q2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Level(Vector512<float> x, Vector512<float> inv) =>
        Vector512.MinNative(Vector512.MaxNative(Vector512.Round(x * inv), Vector512.Create(-8f)), Vector512.Create(7f));

    // the largest weight over each candidate's level: the wide end (−8), the narrow end (7), or inside
    private static ReadOnlySpan<float> Candidates => [-8f, -7.5f, -7f, 7f];

    // the scale rounded to f16 and the levels at that scale; returns the scale's bits
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Store(scoped in Group32 g, float d, Span<sbyte> levels)
    {
        ushort bits = Half16.FromF32(d);
        Group32.Store(g.Levels(Half16.ToF32(bits), -8, 7), levels);
        return bits;
    }

    // levels at scale d; keeps their least-squares scale if they score best
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Try(scoped in Group32 g, float d, ref float bestScore, ref float bestD)
    {
        var (xq, qq) = g.Dots(g.Levels(d, -8, 7));
        if (qq <= 0) return;
        float score = xq * xq / qq;
        if (score > bestScore) (bestScore, bestD) = (score, xq / qq);
    }
}
