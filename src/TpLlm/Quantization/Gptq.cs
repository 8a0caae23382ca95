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
        const int R = 16; // rows sharing each row of U while it is in cache
        int blocks = (N + R - 1) / R;
        System.Threading.Tasks.Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, b =>
        {
            int r0 = b * R, r1 = Math.Min(N, r0 + R);
            Span<sbyte> scratch = stackalloc sbyte[Group];
            Span<float> d = stackalloc float[R];
            for (int k = 0; k < K; k++)
            {
                float ukk = u is null ? 1 : u[(long)k * K + k];
                var urow = u is null ? default : u.AsSpan((int)((long)k * K + k + 1), K - k - 1);
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
                    if (u is null) continue;
                    float err = (row[k] - q * dd) / ukk;
                    if (err != 0 && urow.Length > 0) TensorPrimitives.MultiplyAdd(urow, -err, row[(k + 1)..], row[(k + 1)..]);
                }
            }
        });
    }

    /// <summary>
    /// U <c>[K, K]</c>, upper triangular with UᵀU = (H + λI)⁻¹ — the factor GPTQ's updates read row by row. λ is
    /// <paramref name="damp"/> × the diagonal's mean (raised tenfold while the factorisation fails); a zero diagonal
    /// entry (a dead input) becomes 1 and is flagged in <paramref name="dead"/>. Computed in f64 as the reversed
    /// Cholesky factor's inverse: with P the reversal, P H P = L Lᵀ gives U = P L⁻¹ P.
    /// </summary>
    public static float[] InverseCholesky(float[] h, int K, double damp, Span<bool> dead, int threads = 0)
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
        var g = new double[(long)K * K];
        for (int attempt = 0; ; attempt++)
        {
            double lambda = damp * Math.Pow(10, attempt) * mean;
            for (int i = 0; i < K; i++)
                for (int j = 0; j <= i; j++)
                {
                    int hi = K - 1 - i, hj = K - 1 - j;
                    g[(long)i * K + j] = i == j ? (dead[hi] ? 1 : h[(long)hi * K + hi]) + lambda : h[(long)hi * K + hj];
                }
            if (CholeskyInPlace(g, K, threads)) break;
            if (attempt == 6) throw new TpLlmException($"GPTQ: the input's second moment [{K}, {K}] is not positive definite even with damping {lambda / mean:G3}");
        }
        var u = new float[(long)K * K];
        // L⁻¹ by forward substitution, a panel of B columns at a time: row i of L, read once, serves the B columns'
        // dots (so L streams from memory K / B times, not K); column j of L⁻¹ (rows i ≥ j) is column K−1−j of U (rows K−1−i)
        int panels = (K + B - 1) / B;
        System.Threading.Tasks.Parallel.For(0, panels, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new double[B * K], (panel, _, x) =>
        {
            int j0 = panel * B, j1 = Math.Min(K, j0 + B);
            for (int i = j0; i < K; i++)
            {
                double lii = g[(long)i * K + i];
                for (int j = j0; j < Math.Min(j1, i + 1); j++)
                {
                    var xj = x.AsSpan((j - j0) * K, K);
                    xj[i] = i == j ? 1 / lii : -TensorPrimitives.Dot<double>(g.AsSpan((int)((long)i * K + j), i - j), xj[j..i]) / lii;
                    u[(long)(K - 1 - i) * K + (K - 1 - j)] = (float)xj[i];
                }
            }
            return x;
        }, _ => { });
        return u;
    }

    private const int B = 16; // columns per panel of the factorisation and the inverse

    // Lower Cholesky factor of the symmetric g (its lower triangle read, overwritten); false when not positive definite.
    // Left-looking by panels of B columns: a row's dots with the panel's rows over the columns before the panel share
    // one read of the row (the panel's rows stay in cache), so the matrix streams from memory K / B times, not K.
    private static bool CholeskyInPlace(double[] g, int K, int threads)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        for (int j0 = 0; j0 < K; j0 += B)
        {
            int j1 = Math.Min(K, j0 + B);
            for (int i = j0; i < j1; i++) // the panel's diagonal block, row by row
                if (!Row(g, K, i, j0, Math.Min(j1, i + 1))) return false;
            // the rows below: each needs only the panel's rows above it (a pivot is only ever on the diagonal)
            if ((long)(K - j1) * (j0 + B) < 1 << 16) { for (int i = j1; i < K; i++) Row(g, K, i, j0, j1); }
            else System.Threading.Tasks.Parallel.For(j1, K, options, i => Row(g, K, i, j0, j1));
        }
        return true;
    }

    // row i's entries in columns [j0, j1) of L (rows above i in those columns done): false on a non-positive pivot
    private static bool Row(double[] g, int K, int i, int j0, int j1)
    {
        var row = g.AsSpan((int)((long)i * K), K);
        for (int j = j0; j < j1; j++)
        {
            var lj = g.AsSpan((int)((long)j * K), K);
            double s = row[j] - TensorPrimitives.Dot<double>(row[..j], lj[..j]);
            if (j < i) row[j] = s / lj[j];
            else if (s > 0) row[j] = Math.Sqrt(s);
            else return false;
        }
        return true;
    }
}
