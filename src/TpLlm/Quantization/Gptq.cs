using System.Numerics;
using System.Numerics.Tensors;
using TpLlm.Tensors.Formats.Blocks;
using TpLlm.Tensors.Formats.Q4;

namespace TpLlm.Quantization;

/// <summary>
/// GPTQ (Frantar et al., "GPTQ: accurate post-training quantization for generative pre-trained transformers", 2022)
/// into the q4 format's numbers: 4-bit levels in [−8, 7] with one f16 scale per group of 32 along K (GGUF's Q4_0,
/// GPTQ's symmetric 4-bit with group size 32). Columns are quantized left to right; each column's rounding error is
/// spread over the columns still to come through the inverse of the input's second moment H = XᵀX, so the layer's
/// output on inputs like X moves least. A group's scale is chosen, by the same search as <c>--quantize q4</c>, from the
/// group's weights as the errors before it have left them. Without H it is that search alone (round to nearest).
/// </summary>
public static class Gptq
{
    /// <summary>Weights per scale.</summary>
    public const int Group = 32;

    /// <summary>
    /// Quantizes <paramref name="w"/> <c>[N, K]</c> (row-major; overwritten with work values) into
    /// <paramref name="levels"/> <c>[N, K]</c> and f16 <paramref name="scales"/> <c>[N, K/32]</c>.
    /// <paramref name="hessian"/> is XᵀX <c>[K, K]</c> of the layer's input (null: round to nearest);
    /// <paramref name="damp"/> is added to its diagonal as a fraction of the diagonal's mean.
    /// </summary>
    public static void QuantizeQ4(float[] w, int N, int K, float[]? hessian, sbyte[] levels, ushort[] scales, double damp = 0.01, int threads = 0)
    {
        if (K % Group != 0) throw new TpLlmException($"GPTQ needs K a multiple of {Group}, K = {K}");
        if (w.Length < (long)N * K || levels.Length < (long)N * K || scales.Length < (long)N * (K / Group))
            throw new TpLlmException($"GPTQ buffers too small for [{N}, {K}]");
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        float[]? u = null;
        if (hessian is not null)
        {
            if (hessian.Length < (long)K * K) throw new TpLlmException($"GPTQ: the Hessian has {hessian.Length} elements, [{K}, {K}] needs {(long)K * K}");
            var dead = new bool[K];
            u = InverseCholesky(hessian, K, damp, dead, threads);
            for (int k = 0; k < K; k++)
                if (dead[k]) for (int n = 0; n < N; n++) w[(long)n * K + k] = 0; // an input that is always 0: its weights do nothing
        }
        if (u is null)
        {
            // round to nearest: each group's search and levels, row by row
            System.Threading.Tasks.Parallel.For(0, N, new ParallelOptions { MaxDegreeOfParallelism = threads }, r =>
            {
                Span<sbyte> group = stackalloc sbyte[Group];
                for (int g = 0; g < K / Group; g++)
                {
                    scales[(long)r * (K / Group) + g] = Q4Block.Quantize(w.AsSpan((int)((long)r * K + g * Group), Group), group);
                    for (int j = 0; j < Group; j++) levels[(long)r * K + g * Group + j] = group[j];
                }
            });
            return;
        }
        // Lazy batches (the paper's section 3): the columns in blocks of Lazy; inside a block each column's error reaches
        // the block's later columns at once, and the block's errors reach the columns after it in one product,
        // W[:, i2:] −= E · U[i1:i2, i2:] — a matrix multiply on the panel kernels instead of a pass over every later
        // column for every column (the same arithmetic, in another order).
        var err = new float[(long)N * Lazy];
        var update = new float[(long)N * K];
        var uBlock = new TpLlm.Tensors.Formats.F32.F32Matrix(K, Lazy); // row n: U[i1..i2, i2 + n]
        using var mm = new TpLlm.Tensors.MatMul(threads);
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var column = new float[Lazy];
        for (int i1 = 0; i1 < K; i1 += Lazy)
        {
            int i2 = Math.Min(K, i1 + Lazy), width = i2 - i1;
            const int R = 16; // rows sharing each row of U while it is in cache
            System.Threading.Tasks.Parallel.For(0, (N + R - 1) / R, options, b =>
            {
                int r0 = b * R, r1 = Math.Min(N, r0 + R);
                Span<sbyte> scratch = stackalloc sbyte[Group];
                Span<float> d = stackalloc float[R];
                for (int k = i1; k < i2; k++)
                {
                    float ukk = u[(long)k * K + k];
                    var urow = u.AsSpan((int)((long)k * K + k + 1), i2 - k - 1);
                    for (int r = r0; r < r1; r++)
                    {
                        var row = w.AsSpan((int)((long)r * K), K);
                        if (k % Group == 0)
                        {
                            ushort bits = Q4Block.Quantize(row.Slice(k, Group), scratch);
                            scales[(long)r * (K / Group) + k / Group] = bits;
                            d[r - r0] = Half16.ToF32(bits);
                        }
                        float dd = d[r - r0], inv = dd != 0 ? 1f / dd : 0f; // as Group32.Levels rounds
                        float q = Math.Clamp(MathF.Round(row[k] * inv), -8f, 7f);
                        levels[(long)r * K + k] = (sbyte)q;
                        float e = (row[k] - q * dd) / ukk;
                        err[(long)r * Lazy + (k - i1)] = e;
                        if (e != 0 && urow.Length > 0) TensorPrimitives.MultiplyAdd(urow, -e, row[(k + 1)..i2], row[(k + 1)..i2]);
                    }
                }
            });
            if (i2 == K) break;
            int rest = K - i2;
            for (int n = 0; n < rest; n++)
            {
                for (int j = 0; j < width; j++) column[j] = u[(long)(i1 + j) * K + i2 + n];
                column.AsSpan(width).Clear();
                uBlock.SetRow(n, column);
            }
            mm.Run(err, N, uBlock, update, rest, rest); // update [N, rest] = E [N, Lazy] · U[i1:i2, i2:]
            System.Threading.Tasks.Parallel.For(0, N, options, r =>
                TensorPrimitives.Subtract(w.AsSpan((int)((long)r * K + i2), rest), update.AsSpan((int)((long)r * rest), rest), w.AsSpan((int)((long)r * K + i2), rest)));
        }
    }

    private const int Lazy = 128; // columns per lazy batch: a multiple of the group

    /// <summary>
    /// U <c>[K, K]</c>, upper triangular with UᵀU = (H + λI)⁻¹ — the factor GPTQ's updates read row by row. λ is
    /// <paramref name="damp"/> × the diagonal's mean (raised tenfold while the factorisation fails); a zero diagonal
    /// entry (a dead input) becomes 1 and is flagged in <paramref name="dead"/>. Computed in f32, as GPTQ's reference
    /// does, as the reversed Cholesky factor's inverse: with P the reversal, P H P = L Lᵀ gives U = P L⁻¹ P.
    /// </summary>
    public static unsafe float[] InverseCholesky(float[] h, int K, double damp, Span<bool> dead, int threads = 0)
    {
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        double mean = 0;
        for (int k = 0; k < K; k++)
        {
            double v = h[(long)k * K + k];
            dead[k] = v == 0;
            mean += dead[k] ? 1 : v;
        }
        mean /= K;
        var g = new float[(long)K * K];
        for (int attempt = 0; ; attempt++)
        {
            double lambda = damp * Math.Pow(10, attempt) * mean;
            for (int i = 0; i < K; i++)
                for (int j = 0; j <= i; j++)
                {
                    int hi = K - 1 - i, hj = K - 1 - j;
                    g[(long)i * K + j] = i == j ? (float)((dead[hi] ? 1 : h[(long)hi * K + hi]) + lambda) : h[(long)hi * K + hj];
                }
            if (CholeskyInPlace(g, K, threads)) break;
            if (attempt == 6) throw new TpLlmException($"GPTQ: the input's second moment [{K}, {K}] is not positive definite even with damping {lambda / mean:G3}");
        }
        var u = new float[(long)K * K];
        // L⁻¹ by forward substitution, a panel of B columns at a time: row i of L, read once, serves the B columns'
        // dots (so L streams from memory K / B times, not K); column j of L⁻¹ (rows i ≥ j, zero above) is column
        // K−1−j of U (rows K−1−i)
        int panels = (K + B - 1) / B;
        System.Threading.Tasks.Parallel.For(0, panels, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new float[B * K], (panel, _, x) =>
        {
            int j0 = panel * B, nb = Math.Min(K, j0 + B) - j0;
            Array.Clear(x);
            Span<float> d = stackalloc float[B];
            fixed (float* pg = g, px = x)
                for (int i = j0; i < K; i++)
                {
                    float lii = pg[(long)i * K + i];
                    DotsB(pg + (long)i * K + j0, px + j0, K, nb, i - j0, d);
                    for (int c = 0; c < nb && j0 + c <= i; c++)
                    {
                        float v = j0 + c == i ? 1 / lii : -d[c] / lii;
                        px[(long)c * K + i] = v;
                        u[(long)(K - 1 - i) * K + (K - 1 - j0 - c)] = v;
                    }
                }
            return x;
        }, _ => { });
        return u;
    }

    private const int B = 16; // columns per panel of the factorisation and the inverse: one read of a row from memory serves B dots

    // d[c] = Σ_{k < n} a[k] · b[c·ldb + k] for c < nb ≤ B: eight dots at a time share each load of a (the second eight
    // find a in cache)
    private static unsafe void DotsB(float* a, float* b, long ldb, int nb, int n, Span<float> d)
    {
        for (int c = 0; c < nb; c += 8) Dots8(a, b + c * ldb, ldb, Math.Min(8, nb - c), n, d[c..]);
    }

    private static unsafe void Dots8(float* a, float* b, long ldb, int nb, int n, Span<float> d)
    {
        // rows past nb read row 0 again (their sums are dropped)
        float* b1 = nb > 1 ? b + ldb : b, b2 = nb > 2 ? b + 2 * ldb : b, b3 = nb > 3 ? b + 3 * ldb : b;
        float* b4 = nb > 4 ? b + 4 * ldb : b, b5 = nb > 5 ? b + 5 * ldb : b, b6 = nb > 6 ? b + 6 * ldb : b, b7 = nb > 7 ? b + 7 * ldb : b;
        Vector<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        int W = Vector<float>.Count, k = 0;
        for (; k + W <= n; k += W)
        {
            var x = Load(a + k);
            s0 = Vector.FusedMultiplyAdd(x, Load(b + k), s0);
            s1 = Vector.FusedMultiplyAdd(x, Load(b1 + k), s1);
            s2 = Vector.FusedMultiplyAdd(x, Load(b2 + k), s2);
            s3 = Vector.FusedMultiplyAdd(x, Load(b3 + k), s3);
            s4 = Vector.FusedMultiplyAdd(x, Load(b4 + k), s4);
            s5 = Vector.FusedMultiplyAdd(x, Load(b5 + k), s5);
            s6 = Vector.FusedMultiplyAdd(x, Load(b6 + k), s6);
            s7 = Vector.FusedMultiplyAdd(x, Load(b7 + k), s7);
        }
        d[0] = Vector.Sum(s0); d[1] = Vector.Sum(s1); d[2] = Vector.Sum(s2); d[3] = Vector.Sum(s3);
        d[4] = Vector.Sum(s4); d[5] = Vector.Sum(s5); d[6] = Vector.Sum(s6); d[7] = Vector.Sum(s7);
        for (; k < n; k++)
        {
            float ak = a[k];
            d[0] += ak * b[k]; d[1] += ak * b1[k]; d[2] += ak * b2[k]; d[3] += ak * b3[k];
            d[4] += ak * b4[k]; d[5] += ak * b5[k]; d[6] += ak * b6[k]; d[7] += ak * b7[k];
        }
    }

    private static unsafe Vector<float> Load(float* p) => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<Vector<float>>(p);

    // Lower Cholesky factor of the symmetric g (its lower triangle read, overwritten); false when not positive definite.
    // Right-looking by panels of Nb columns, the heavy steps on the f32 panel kernels: each panel's diagonal block is
    // factored as it stands, the rows below are solved against it as one product with the block's inverse,
    // P = A21 · L11⁻ᵀ, and the rest of the matrix takes the panel's product A22 −= P · Pᵀ, rows in chunks (the lower
    // triangle and the chunk's diagonal blocks only). The matrix then streams from memory K / Nb times in products
    // whose tiles keep their operands in cache, not once per 16 columns in dots.
    private static unsafe bool CholeskyInPlace(float[] g, int K, int threads)
    {
        const int Nb = 128, Chunk = 256;
        using var mm = new TpLlm.Tensors.MatMul(threads);
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var inverse = new TpLlm.Tensors.Formats.F32.F32Matrix(Nb, Nb); // row c: row c of L11⁻¹ (zero past the block)
        var panelRows = new TpLlm.Tensors.Formats.F32.F32Matrix(Math.Max(1, K - Nb), Nb); // row t: P[t] (zero past the block)
        var a21 = new float[(long)Math.Max(1, K - Nb) * Nb];
        var p = new float[(long)Math.Max(1, K - Nb) * Nb];
        var y = new float[(long)Chunk * K];
        var l11 = new double[Nb * Nb];
        var row = new float[Nb];
        fixed (float* pg = g)
        {
            float* gp = pg;
            for (int j0 = 0; j0 < K; j0 += Nb)
            {
                int nb = Math.Min(Nb, K - j0), T = K - j0 - nb;
                // the diagonal block, row by row (the panels before it have already been taken off)
                for (int i = j0; i < j0 + nb; i++)
                    for (int j = j0; j <= i; j++)
                    {
                        float s = gp[(long)i * K + j];
                        for (int m = j0; m < j; m++) s -= gp[(long)i * K + m] * gp[(long)j * K + m];
                        if (j < i) gp[(long)i * K + j] = s / gp[(long)j * K + j];
                        else if (s > 0) gp[(long)i * K + j] = MathF.Sqrt(s);
                        else return false;
                    }
                if (T == 0) break;
                // L11⁻¹ by forward substitution (in double: nb³/6 operations, the panel's accuracy rests on it)
                Array.Clear(l11);
                for (int c = 0; c < nb; c++)
                    for (int i = c; i < nb; i++)
                    {
                        double s = i == c ? 1 : 0;
                        for (int m = c; m < i; m++) s -= gp[(long)(j0 + i) * K + j0 + m] * l11[m * Nb + c];
                        l11[i * Nb + c] = s / gp[(long)(j0 + i) * K + j0 + i];
                    }
                for (int c = 0; c < Nb; c++)
                {
                    for (int m = 0; m < Nb; m++) row[m] = c < nb && m < nb ? (float)l11[c * Nb + m] : 0f;
                    inverse.SetRow(c, row);
                }
                // P = A21 · L11⁻ᵀ: row t of P is A21[t] · (L11⁻¹)ᵀ, a product with the inverse's rows
                System.Threading.Tasks.Parallel.For(0, T, options, t =>
                {
                    var src = new ReadOnlySpan<float>(gp + (long)(j0 + nb + t) * K + j0, nb);
                    src.CopyTo(a21.AsSpan((int)((long)t * Nb), nb));
                    a21.AsSpan((int)((long)t * Nb + nb), Nb - nb).Clear();
                });
                mm.Run(a21, T, inverse, p, Nb);
                System.Threading.Tasks.Parallel.For(0, T, options, t =>
                {
                    var pt = p.AsSpan((int)((long)t * Nb), Nb);
                    pt[nb..].Clear();
                    pt[..nb].CopyTo(new Span<float>(gp + (long)(j0 + nb + t) * K + j0, nb));
                });
                for (int t = 0; t < T; t++) panelRows.SetRow(t, p.AsSpan((int)((long)t * Nb), Nb));
                // A22 −= P · Pᵀ over the lower triangle: rows [r0, r1) against rows [0, r1)
                for (int r0 = 0; r0 < T; r0 += Chunk)
                {
                    int r1 = Math.Min(T, r0 + Chunk);
                    mm.Run(p.AsSpan((int)((long)r0 * Nb), (r1 - r0) * Nb), r1 - r0, panelRows, y, r1, r1);
                    System.Threading.Tasks.Parallel.For(r0, r1, options, t =>
                    {
                        var dst = new Span<float>(gp + (long)(j0 + nb + t) * K + j0 + nb, t + 1);
                        TensorPrimitives.Subtract(dst, y.AsSpan((int)((long)(t - r0) * r1), t + 1), dst);
                    });
                }
            }
        }
        return true;
    }
}
