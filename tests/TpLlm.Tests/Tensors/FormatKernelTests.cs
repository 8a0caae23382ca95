using TpLlm.Checkpoints;
using TpLlm.Tensors;

namespace TpLlm.Tests.Tensors;

/// <summary>
/// The f32 and quantized formats' kernels on every path, at awkward sizes (K not a multiple of 32, ragged panels, every
/// token tile), against a scalar double-precision reference over the matrix's own (dequantized) values.
/// </summary>
public class FormatKernelTests
{
    // every path this machine runs, and the 256-bit one again on AVX-VNNI's integer products where it has them
    internal static IEnumerable<(KernelPath Path, bool Vnni)> Kernels()
    {
        foreach (var path in Enum.GetValues<KernelPath>().Where(KernelPaths.IsSupported))
        {
            yield return (path, false);
            if (KernelPaths.Vnni && path == KernelPath.Vector256) yield return (path, true);
        }
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var format in new[] { "f32", "int8", "q4" })
            foreach (var (path, vnni) in Kernels().Where(k => !k.Vnni || format == "int8")) // int8 alone takes VNNI's products
                foreach (var (t, n, k) in new[] { (1, 1, 1), (1, 7, 33), (2, 5, 31), (3, 40, 64), (4, 8, 100), (5, 13, 65), (1, 70, 1000), (16, 11, 129),
                             (65, 6, 47), (1, 1027, 96), (12, 70, 64), (9, 33, 600), (17, 96, 1100), (28, 70, 1027), (100, 33, 70), (2, 64, 8200) })
                    foreach (int threads in new[] { 1, 3 })
                        yield return [format, path, vnni, t, n, k, threads];
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
    public void Kernels_match_a_scalar_double_reference_over_the_stored_values(string format, KernelPath path, bool vnni, int T, int N, int K, int threads)
    {
        var rng = new Random(T * 1000 + N * 10 + K);
        var w = Random(Format(format), N, K, rng);
        var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int ldy = N + 3;
        var y = Enumerable.Repeat(float.NaN, T * ldy).ToArray();
        using var mm = new MatMul(threads, path, vnni);
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
        // quantized formats meet int8 activations: q4 scaled by max |x| (llama.cpp's Q8_0 for its Q4_0), int8 by the largest pair
        var xs = format != "f32" ? ActivationReference(x, K, PairBound(format)) : x.Select(v => (double)v).ToArray();
        for (int t = 0; t < T; t++)
        {
            for (int n = 0; n < N; n++)
            {
                double expected = 0;
                for (int k = 0; k < K; k++) expected += (double)wf[n, k] * xs[t * K + k];
                Assert.True(Math.Abs(expected - y[t * ldy + n]) <= 1e-5 * Math.Max(1, Math.Sqrt(K)), $"{format} {path} T={T} N={N} K={K} y[{t},{n}]={y[t * ldy + n]} expected {expected}");
            }
            for (int n = N; n < ldy && t < T - 1; n++) Assert.True(float.IsNaN(y[t * ldy + n]), "kernel wrote past its columns");
        }
    }

    internal static bool PairBound(string format) => format == "int8";

    // The bound of the group of 32 holding column j of x[t] (row of K): max |x|, or the largest |x[2i]| + |x[2i+1]| of its
    // column pairs (a pair's partner past K is zero).
    internal static float GroupBound(float[] x, int K, int t, int j, bool pairBound)
    {
        int g = j / 32 * 32, end = Math.Min(K, g + 32);
        float b = 0;
        for (int k = g; k < end; k++)
            b = Math.Max(b, pairBound ? (k % 2 == 0 ? Math.Abs(x[t * K + k]) + (k + 1 < end ? Math.Abs(x[t * K + k + 1]) : 0f) : 0f) : Math.Abs(x[t * K + k]));
        return b;
    }

    // x as quantized activations: per group of 32 of each token's row, d = b / 127 and x ≈ d · round(x · 127 / b), the
    // rounding computed in f32 as the kernels do (ties to even)
    internal static double[] ActivationReference(float[] x, int K, bool pairBound)
    {
        var r = new double[x.Length];
        for (int t = 0; t < x.Length / K; t++)
            for (int k = 0; k < K; k++)
            {
                float b = GroupBound(x, K, t, k, pairBound);
                float inv = b > 0 ? 127f / b : 0f, d = b / 127f;
                r[t * K + k] = (double)d * Math.Round(x[t * K + k] * inv, MidpointRounding.ToEven);
            }
        return r;
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("q4")]
    public void A_token_gives_the_same_numbers_alone_or_beside_others_on_every_path_within_the_activations_rounding(string format)
    {
        // thirteen tokens: a tile of eight, one of four and one more; each alone streams the blocks instead
        var rng = new Random(11);
        int N = 70, K = 1000, T = 13;
        var w = Random(Format(format), N, K, rng);
        var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[]? first = null;
        foreach (var (path, vnni) in Kernels())
        {
            var all = new float[T * N];
            using var mm = new MatMul(2, path, vnni);
            mm.Run(x, T, w, all, N);
            for (int t = 0; t < T; t++)
            {
                var one = new float[N];
                mm.Run(x.AsSpan(t * K, K), 1, w, one, N);
                Assert.Equal(one, all.AsSpan(t * N, N).ToArray()); // integer sums, then the same f32 steps
            }
            first ??= all;
            Assert.Equal(first, all);
            var row = new float[K];
            for (int n = 0; n < N; n++)
            {
                // against the f32 product: each activation moves by at most half its group's step, b / 127 / 2
                w.RowToF32(n, row);
                for (int t = 0; t < T; t++)
                {
                    double exact = 0, bound = 1e-4;
                    for (int k = 0; k < K; k++)
                    {
                        exact += (double)row[k] * x[t * K + k];
                        bound += Math.Abs(row[k]) * GroupBound(x, K, t, k, PairBound(format)) / 127 / 2;
                    }
                    Assert.True(Math.Abs(exact - all[t * N + n]) <= bound, $"{format} {path} vnni {vnni} y[{t},{n}] = {all[t * N + n]}, f32 product {exact}, bound {bound}");
                }
            }
        }
    }

    [Fact]
    public void Int8_products_at_the_extremes_do_not_saturate_on_any_path()
    {
        // Levels ±127 and −128 (stored 255, 1 and 0) against activations whose pairs reach the bound with one sign
        // (|q₀| + |q₁| = 128): each word of the byte multiply-add is then 255 · 128, the most it can hold.
        int N = 20, K = 96, T = 13;
        var w = (TpLlm.Tensors.Formats.Blocks.BlockQuantizedMatrix<TpLlm.Tensors.Formats.Int8.Int8Block>)Format("int8").Create(N, K, DType.BF16);
        var levels = new sbyte[32];
        for (int n = 0; n < N; n++)
            for (int g = 0; g < K / 32; g++)
            {
                for (int j = 0; j < 32; j++) levels[j] = (n % 4) switch { 0 => 127, 1 => -127, 2 => -128, _ => (sbyte)(j % 2 == 0 ? 127 : -128) };
                w.SetGroup(n, g, BitConverter.HalfToUInt16Bits((Half)(0.5 + n % 3)), levels);
            }
        var x = new float[T * K];
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) x[t * K + k] = (t % 3 == 0 ? -1f : 1f) * (t % 2 == 0 || k % 4 < 2 ? 0.75f : 0.25f);
        var xs = ActivationReference(x, K, PairBound("int8"));
        foreach (var (path, vnni) in Kernels())
        {
            var y = new float[T * N];
            using var mm = new MatMul(1, path, vnni);
            mm.Run(x, T, w, y, N);
            for (int t = 0; t < T; t++)
                for (int n = 0; n < N; n++)
                {
                    double expected = 0;
                    for (int k = 0; k < K; k++) expected += (double)w.Get(n, k) * xs[t * K + k];
                    Assert.True(Math.Abs(expected - y[t * N + n]) <= 1e-5 * Math.Abs(expected) + 1e-4, $"{path} vnni {vnni} y[{t},{n}] = {y[t * N + n]}, expected {expected}");
                }
        }
    }
}
