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
        var update = new float[(long)N * Math.Max(1, K - Lazy)]; // [N, rest]: the columns after the first batch at most
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
        var u = new float[(long)K * K];
        for (int attempt = 0; ; attempt++)
        {
            double lambda = damp * Math.Pow(10, attempt) * mean;
            for (int i = 0; i < K; i++)
                for (int j = 0; j <= i; j++)
                {
                    int hi = K - 1 - i, hj = K - 1 - j;
                    g[(long)i * K + j] = i == j ? (float)((dead[hi] ? 1 : h[(long)hi * K + hi]) + lambda) : h[(long)hi * K + hj];
                }
            if (CholeskyInPlace(g, K, threads, u)) break;
            if (attempt == 6) throw new TpLlmException($"GPTQ: the input's second moment [{K}, {K}] is not positive definite even with damping {lambda / mean:G3}");
        }
        // u holds L⁻¹; element (i, j) is U's (K−1−i, K−1−j): turn it half round in place
        long count = (long)K * K;
        for (long e = 0; e < count / 2; e++) (u[e], u[count - 1 - e]) = (u[count - 1 - e], u[e]);
        return u;
    }

    // Lower Cholesky factor L of the symmetric g (its lower triangle read, overwritten) and L⁻¹ into x; false when g is
    // not positive definite. Right-looking by panels of Nb columns, the heavy steps products on the f32 panel kernels:
    // each panel's diagonal block L11 is factored as it stands and inverted; the rows below are solved as one product,
    // L21 = A21 · L11⁻ᵀ; the rest of the matrix takes A22 −= L21 · L21ᵀ (rows in chunks, the lower triangle). L⁻¹ comes
    // alongside, solving L X = I by the same panels: the panel's rows of X are L11⁻¹ times what is left of I there, and
    // the rows below lose L21 times them. The matrix streams from memory K / Nb times in products whose tiles keep their
    // operands in cache, not once per few columns in dots.
    private static unsafe bool CholeskyInPlace(float[] g, int K, int threads, float[] x)
    {
        const int Nb = 128, Chunk = 256;
        using var mm = new TpLlm.Tensors.MatMul(threads);
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        int below = Math.Max(1, K - Nb);
        var inverse = new TpLlm.Tensors.Formats.F32.F32Matrix(Nb, Nb); // row c: row c of L11⁻¹ (zero past the block)
        var l21 = new TpLlm.Tensors.Formats.F32.F32Matrix(below, Nb);  // row t: L21[t] (zero past the block)
        var xPanel = new TpLlm.Tensors.Formats.F32.F32Matrix(K, Nb);   // row n: column n of the panel's rows of X
        var a21 = new float[(long)below * Nb];
        var p = new float[(long)below * Nb];
        var rt = new float[(long)K * Nb];  // row n: column n of the panel's rows of what is left of I
        var xt = new float[(long)K * Nb];  // row n: column n of the panel's rows of X
        var y = new float[(long)Chunk * K];
        var l11 = new double[Nb * Nb];
        var row = new float[Nb];
        Array.Clear(x);
        for (int i = 0; i < K; i++) x[(long)i * K + i] = 1;
        fixed (float* pg = g, px = x)
        {
            float* gp = pg, xp = px;
            for (int j0 = 0; j0 < K; j0 += Nb)
            {
                int nb = Math.Min(Nb, K - j0), T = K - j0 - nb, cols = j0 + nb;
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
                // X's panel rows: X[j0 + r, n] = Σ_c L11⁻¹[r, c] · R[j0 + c, n] for the columns n < cols (the rest are 0)
                System.Threading.Tasks.Parallel.For(0, cols, options, n =>
                {
                    var dst = rt.AsSpan((int)((long)n * Nb), Nb);
                    for (int c = 0; c < nb; c++) dst[c] = xp[(long)(j0 + c) * K + n];
                    dst[nb..].Clear();
                });
                mm.Run(rt, cols, inverse, xt, Nb);
                System.Threading.Tasks.Parallel.For(0, cols, options, n =>
                {
                    for (int r = 0; r < nb; r++) xp[(long)(j0 + r) * K + n] = xt[(long)n * Nb + r];
                });
                if (T == 0) break;
                for (int n = 0; n < cols; n++) xPanel.SetRow(n, xt.AsSpan((int)((long)n * Nb), Nb));
                // L21 = A21 · L11⁻ᵀ: row t of L21 is A21[t] against the inverse's rows
                System.Threading.Tasks.Parallel.For(0, T, options, t =>
                {
                    new ReadOnlySpan<float>(gp + (long)(j0 + nb + t) * K + j0, nb).CopyTo(a21.AsSpan((int)((long)t * Nb), nb));
                    a21.AsSpan((int)((long)t * Nb + nb), Nb - nb).Clear();
                });
                mm.Run(a21, T, inverse, p, Nb);
                System.Threading.Tasks.Parallel.For(0, T, options, t =>
                {
                    var pt = p.AsSpan((int)((long)t * Nb), Nb);
                    pt[nb..].Clear();
                    pt[..nb].CopyTo(new Span<float>(gp + (long)(j0 + nb + t) * K + j0, nb));
                });
                for (int t = 0; t < T; t++) l21.SetRow(t, p.AsSpan((int)((long)t * Nb), Nb));
                for (int r0 = 0; r0 < T; r0 += Chunk)
                {
                    int r1 = Math.Min(T, r0 + Chunk);
                    var chunk = p.AsSpan((int)((long)r0 * Nb), (r1 - r0) * Nb);
                    // A22 −= L21 · L21ᵀ over the lower triangle: rows [r0, r1) against rows [0, r1)
                    mm.Run(chunk, r1 - r0, l21, y, r1, r1);
                    System.Threading.Tasks.Parallel.For(r0, r1, options, t =>
                    {
                        var dst = new Span<float>(gp + (long)(j0 + nb + t) * K + j0 + nb, t + 1);
                        TensorPrimitives.Subtract(dst, y.AsSpan((int)((long)(t - r0) * r1), t + 1), dst);
                    });
                    // the rows below lose L21 times X's panel rows, in the columns n < cols
                    mm.Run(chunk, r1 - r0, xPanel, y, cols, cols);
                    System.Threading.Tasks.Parallel.For(r0, r1, options, t =>
                    {
                        var dst = new Span<float>(xp + (long)(j0 + nb + t) * K, cols);
                        TensorPrimitives.Subtract(dst, y.AsSpan((int)((long)(t - r0) * cols), cols), dst);
                    });
                }
            }
        }
        return true;
    }
}
