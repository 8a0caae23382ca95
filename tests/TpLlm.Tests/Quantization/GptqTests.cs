using TpLlm.Quantization;

namespace TpLlm.Tests.Quantization;

public class GptqTests
{
    // inputs with correlated columns and a few loud ones, as a transformer's are: x = A z, z Gaussian
    private static float[] Inputs(int T, int K, int seed)
    {
        var rng = new Random(seed);
        var mix = new double[K * K];
        for (int i = 0; i < mix.Length; i++) mix[i] = rng.NextDouble() - 0.5;
        var x = new float[T * K];
        var z = new double[K];
        for (int t = 0; t < T; t++)
        {
            for (int k = 0; k < K; k++) z[k] = Gauss(rng);
            for (int i = 0; i < K; i++)
            {
                double s = 0;
                for (int k = 0; k < K; k++) s += mix[i * K + k] * z[k];
                x[t * K + i] = (float)(s * (i % 11 == 0 ? 4 : 1));
            }
        }
        return x;
    }

    private static double Gauss(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static float[] SecondMoment(float[] x, int T, int K)
    {
        var h = new float[K * K];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
            {
                double s = 0;
                for (int t = 0; t < T; t++) s += (double)x[t * K + i] * x[t * K + j];
                h[i * K + j] = (float)s;
            }
        return h;
    }

    [Theory]
    [InlineData(300, 40, 7, 1)]    // one panel of the blocked factorisation
    [InlineData(400, 300, 200, 9)] // three panels (the last one short), the dead input in the second
    public void The_factor_times_its_transpose_inverts_the_damped_second_moment(int T, int K, int deadInput, int seed)
    {
        var x = Inputs(T, K, seed);
        for (int t = 0; t < T; t++) x[t * K + deadInput] = 0;
        var h = SecondMoment(x, T, K);
        var dead = new bool[K];
        var u = Gptq.InverseCholesky(h, K, 0.01, dead, threads: 2);
        Assert.Equal(Enumerable.Range(0, K).Select(k => k == deadInput), dead);
        double mean = Enumerable.Range(0, K).Average(k => k == deadInput ? 1.0 : h[k * K + k]);
        for (int i = 0; i < K; i++)
            for (int j = 0; j < i; j++) Assert.Equal(0f, u[i * K + j]);
        var inv = new double[K * K]; // UᵀU
        for (int r = 0; r < K; r++)
            for (int m = r; m < K; m++)
            {
                double urm = u[r * K + m];
                if (urm == 0) continue;
                for (int j = r; j < K; j++) inv[m * K + j] += urm * u[r * K + j];
            }
        // A = H (dead diagonal 1) + 0.01 · mean · I; A · UᵀU must be I
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
            {
                double s = 0;
                for (int m = 0; m < K; m++)
                {
                    double a = i == m ? (i == deadInput ? 1 : h[i * K + i]) + 0.01 * mean : h[i * K + m];
                    s += a * inv[m * K + j];
                }
                Assert.True(Math.Abs(s - (i == j ? 1 : 0)) < 2e-3, $"(A·UᵀU)[{i}, {j}] = {s}");
            }
    }

    [Fact]
    public void With_uncorrelated_inputs_it_rounds_to_nearest()
    {
        const int N = 24, K = 96;
        var rng = new Random(2);
        var w = Enumerable.Range(0, N * K).Select(_ => (float)Gauss(rng) * 0.05f).ToArray();
        var identity = new float[K * K];
        for (int k = 0; k < K; k++) identity[k * K + k] = 3;
        var (l1, s1) = (new sbyte[N * K], new ushort[N * K / 32]);
        var (l2, s2) = (new sbyte[N * K], new ushort[N * K / 32]);
        Gptq.QuantizeQ4((float[])w.Clone(), N, K, identity, l1, s1);
        Gptq.QuantizeQ4((float[])w.Clone(), N, K, null, l2, s2);
        Assert.Equal(l2, l1);
        Assert.Equal(s2, s1);
        // and round to nearest is the q4 format's own choice of levels while loading
        var q4 = TpLlm.Tensors.WeightFormats.ForQuantize("q4")!.Create(N, K, TpLlm.Checkpoints.DType.F32);
        for (int r = 0; r < N; r++)
            q4.SetRow(r, System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan(r * K, K)), TpLlm.Checkpoints.DType.F32, "test");
        for (int r = 0; r < N; r++)
            for (int k = 0; k < K; k++)
                Assert.Equal(q4.Get(r, k), l2[r * K + k] * (float)BitConverter.UInt16BitsToHalf(s2[r * (K / 32) + k / 32]));
    }

    // GPTQ as the paper's algorithm 1 states it without lazy batches, in double: every column's error spread at once over
    // all the columns after it. Scales by the q4 format's search on the group as the errors have left it.
    private static (sbyte[] Levels, ushort[] Scales) EagerReference(float[] w, int N, int K, float[] u)
    {
        var levels = new sbyte[N * K];
        var scales = new ushort[N * K / 32];
        var group = new float[32];
        var scratch = new sbyte[32];
        for (int r = 0; r < N; r++)
        {
            var row = Enumerable.Range(0, K).Select(k => (double)w[r * K + k]).ToArray();
            double d = 0;
            for (int k = 0; k < K; k++)
            {
                if (k % 32 == 0)
                {
                    for (int j = 0; j < 32; j++) group[j] = (float)row[k + j];
                    scales[r * (K / 32) + k / 32] = TpLlm.Tensors.Formats.Q4.Q4Block.Quantize(group, scratch);
                    d = (double)BitConverter.UInt16BitsToHalf(scales[r * (K / 32) + k / 32]);
                }
                double q = d == 0 ? 0 : Math.Clamp(Math.Round(row[k] / d, MidpointRounding.ToEven), -8, 7);
                levels[r * K + k] = (sbyte)q;
                double e = (row[k] - q * d) / u[k * K + k];
                for (int j = k + 1; j < K; j++) row[j] -= e * u[k * K + j];
            }
        }
        return (levels, scales);
    }

    [Fact]
    public void Lazy_batches_give_the_eager_algorithms_levels()
    {
        // K over two batches of 128 columns and part of a third, so the batches' product carries errors forward
        const int N = 40, K = 320, T = 700;
        var rng = new Random(5);
        var w = Enumerable.Range(0, N * K).Select(_ => (float)Gauss(rng) * 0.05f).ToArray();
        var x = Inputs(T, K, 6);
        var h = SecondMoment(x, T, K);
        var (levels, scales) = (new sbyte[N * K], new ushort[N * K / 32]);
        Gptq.QuantizeQ4((float[])w.Clone(), N, K, h, levels, scales, threads: 2);
        var u = Gptq.InverseCholesky(h, K, 0.01, new bool[K], threads: 1);
        var (refLevels, refScales) = EagerReference(w, N, K, u);
        // f32 sums in another order against double: a level on a rounding boundary may go the other way, and its error
        // then moves the rest of its row a little (the eager algorithm in f32 agrees with this reference on 97 % here)
        int same = Enumerable.Range(0, N * K).Count(i => levels[i] == refLevels[i]);
        Assert.True(same >= 0.95 * N * K, $"{same} of {N * K} levels as the eager algorithm's");
        // what GPTQ minimises, the outputs' error on its inputs, is the reference's
        double lazy = OutputError(w, levels, scales, x, N, K, 0, T), eager = OutputError(w, refLevels, refScales, x, N, K, 0, T);
        Assert.True(Math.Abs(lazy / eager - 1) < 0.02, $"output error {lazy} with lazy batches, {eager} eager");
    }

    // Σ over tokens and outputs of (x · (w − dequantized))²
    private static double OutputError(float[] w, sbyte[] levels, ushort[] scales, float[] x, int N, int K, int t0, int t1)
    {
        double e = 0;
        for (int t = t0; t < t1; t++)
            for (int n = 0; n < N; n++)
            {
                double d = 0;
                for (int k = 0; k < K; k++)
                    d += x[t * K + k] * (w[n * K + k] - levels[n * K + k] * (double)BitConverter.UInt16BitsToHalf(scales[n * (K / 32) + k / 32]));
                e += d * d;
            }
        return e;
    }

    [Fact]
    public void It_moves_the_outputs_less_than_rounding_does_on_inputs_like_its_calibration()
    {
        const int N = 32, K = 64, T = 512;
        var rng = new Random(3);
        var w = Enumerable.Range(0, N * K).Select(_ => (float)Gauss(rng) * 0.05f).ToArray();
        var x = Inputs(T, K, 4);
        var h = SecondMoment(x, T / 2, K); // calibrated on the first half, judged on the second
        var (lg, sg) = (new sbyte[N * K], new ushort[N * K / 32]);
        var (lr, sr) = (new sbyte[N * K], new ushort[N * K / 32]);
        Gptq.QuantizeQ4((float[])w.Clone(), N, K, h, lg, sg);
        Gptq.QuantizeQ4((float[])w.Clone(), N, K, null, lr, sr);
        Assert.All(lg, l => Assert.InRange(l, -8, 7));
        double gptq = OutputError(w, lg, sg, x, N, K, T / 2, T), rtn = OutputError(w, lr, sr, x, N, K, T / 2, T);
        Assert.True(gptq < 0.7 * rtn, $"output error {gptq} with GPTQ, {rtn} rounding to nearest");
    }
}
