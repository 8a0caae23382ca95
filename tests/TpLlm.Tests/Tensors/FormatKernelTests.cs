using TpLlm.Checkpoints;
using TpLlm.Tensors;

namespace TpLlm.Tests.Tensors;

/// <summary>
/// The f32 and quantized formats' kernels on every path, at awkward sizes (K not a multiple of 32, ragged panels, every
/// token tile), against a scalar double-precision reference over the matrix's own (dequantized) values.
/// </summary>
public class FormatKernelTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var format in new[] { "f32", "int8", "q4" })
            foreach (var path in Enum.GetValues<KernelPath>().Where(KernelPaths.IsSupported))
                foreach (var (t, n, k) in new[] { (1, 1, 1), (1, 7, 33), (2, 5, 31), (3, 40, 64), (4, 8, 100), (5, 13, 65), (1, 70, 1000), (16, 11, 129),
                             (65, 6, 47), (1, 1027, 96), (12, 70, 64), (9, 33, 600), (17, 96, 1100), (28, 70, 1027), (100, 33, 70), (2, 64, 8200) })
                    foreach (int threads in new[] { 1, 3 })
                        yield return [format, path, t, n, k, threads];
    }

    internal static IWeightFormat Format(string name) => name == "f32" ? TpLlm.Tensors.Formats.F32.F32Format.Instance : WeightFormats.ForQuantize(name)!;

    // a matrix of the format filled from random bf16 rows through SetRow, as the loader fills it
    internal static WeightMatrix Random(IWeightFormat format, int N, int K, Random rng)
    {
        var w = format.Create(N, K, DType.BF16);
        var row = new ushort[K];
        for (int n = 0; n < N; n++)
        {
            for (int k = 0; k < K; k++) row[k] = Bf16.FromF32((float)(rng.NextDouble() * 2 - 1) * (n % 5 + 1) * 0.05f);
            w.SetRow(n, System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()), DType.BF16, "test");
        }
        return w;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernels_match_a_scalar_double_reference_over_the_stored_values(string format, KernelPath path, int T, int N, int K, int threads)
    {
        var rng = new Random(T * 1000 + N * 10 + K);
        var w = Random(Format(format), N, K, rng);
        var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int ldy = N + 3;
        var y = Enumerable.Repeat(float.NaN, T * ldy).ToArray();
        using var mm = new MatMul(threads, path);
        mm.Run(x, T, w, y, ldy);
        var wf = new float[N, K];
        var row = new float[K];
        for (int n = 0; n < N; n++)
        {
            w.RowToF32(n, row);
            for (int k = 0; k < K; k++)
            {
                wf[n, k] = row[k];
                if (k % 97 == 0) Assert.Equal(row[k], w.Get(n, k)); // the element and the row views agree
            }
        }
        for (int t = 0; t < T; t++)
        {
            for (int n = 0; n < N; n++)
            {
                double expected = 0;
                for (int k = 0; k < K; k++) expected += (double)wf[n, k] * x[t * K + k];
                Assert.True(Math.Abs(expected - y[t * ldy + n]) <= 1e-5 * Math.Max(1, Math.Sqrt(K)), $"{format} {path} T={T} N={N} K={K} y[{t},{n}]={y[t * ldy + n]} expected {expected}");
            }
            for (int n = N; n < ldy && t < T - 1; n++) Assert.True(float.IsNaN(y[t * ldy + n]), "kernel wrote past its columns");
        }
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("q4")]
    public void The_decode_kernel_and_the_dequantizing_path_agree_on_one_token(string format)
    {
        // one token streams the blocks; the same token with another beside it goes through dequantized panels
        var rng = new Random(11);
        int N = 70, K = 1000;
        var w = Random(Format(format), N, K, rng);
        var x = Enumerable.Range(0, 2 * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var mm = new MatMul(1);
        var one = new float[N];
        var two = new float[2 * N];
        mm.Run(x.AsSpan(0, K), 1, w, one, N);
        mm.Run(x, 2, w, two, N);
        for (int n = 0; n < N; n++) Assert.Equal(two[n], one[n], 1e-4f);
    }
}
