using TpLlm.Tensors;
using TpLlm.Tensors.Formats.Bf16;

namespace TpLlm.Tests.Tensors;

public class KernelTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var path in Enum.GetValues<KernelPath>().Where(KernelPaths.IsSupported))
            foreach (var (t, n, k) in new[] { (1, 1, 1), (1, 7, 33), (2, 5, 31), (3, 9, 64), (4, 8, 100), (5, 13, 65), (16, 11, 129), (65, 6, 47), (1, 1027, 96), (9, 40, 33), (12, 70, 64), (64, 33, 2),
                // several k-blocks of 512 column pairs, full 32-row panel pairs and ragged ones, K odd and even,
                // every tile (12, 8, 4, 1 tokens) and mixes of them
                (8, 64, 2049), (17, 96, 1100), (16, 70, 1025), (9, 32, 3000), (12, 64, 2050), (29, 64, 1027), (37, 40, 1026),
                // more than one 96-token block: whole blocks of 12-token tiles, then the rest
                (97, 40, 33), (200, 70, 1030), (109, 33, 64),
                // a 12- and a 4-token tile as one 16-token tile: alone, after 12-token tiles, after a full 96-token block,
                // over k-blocks with K odd; and a 4-token tile left alone in its block
                (16, 64, 2049), (28, 70, 1027), (112, 40, 33), (100, 33, 70) })
                foreach (int threads in new[] { 1, 3 })
                    yield return [path, t, n, k, threads];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bf16_kernel_matches_a_scalar_double_reference_at_awkward_sizes(KernelPath path, int T, int N, int K, int threads)
    {
        var rng = new Random(T * 1000 + N * 10 + K);
        var w = new Bf16Matrix(N, K);
        for (int n = 0; n < N; n++)
            w.SetBf16Row(n, Enumerable.Range(0, K).Select(_ => Bf16.FromF32((float)(rng.NextDouble() * 2 - 1))).ToArray());
        var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int ldy = N + 3;
        var y = Enumerable.Repeat(float.NaN, T * ldy).ToArray();
        using var mm = new MatMul(threads, path);
        mm.Run(x, T, w, y, ldy);
        for (int t = 0; t < T; t++)
        {
            for (int n = 0; n < N; n++)
            {
                double expected = 0;
                for (int k = 0; k < K; k++) expected += (double)w.Get(n, k) * x[t * K + k];
                Assert.True(Math.Abs(expected - y[t * ldy + n]) <= 1e-4 * Math.Max(1, Math.Sqrt(K)), $"{path} T={T} N={N} K={K} y[{t},{n}]={y[t * ldy + n]} expected {expected}");
            }
            for (int n = N; n < ldy && t < T - 1; n++) Assert.True(float.IsNaN(y[t * ldy + n]), "kernel wrote past its columns");
        }
    }

    [Theory]
    [InlineData(9, 64, 513)]
    [InlineData(20, 70, 300)]
    [InlineData(41, 64, 2049)]
    [InlineData(205, 64, 1100)]
    [InlineData(16, 64, 2049)]
    [InlineData(28, 70, 1025)]
    public void A_token_gets_bitwise_the_same_output_alone_as_in_a_batch_on_every_path(int T, int N, int K)
    {
        var rng = new Random(7);
        var w = new Bf16Matrix(N, K);
        for (int n = 0; n < N; n++)
            w.SetBf16Row(n, Enumerable.Range(0, K).Select(_ => Bf16.FromF32((float)(rng.NextDouble() * 2 - 1))).ToArray());
        var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[]? first = null;
        foreach (var path in Enum.GetValues<KernelPath>().Where(p => p != KernelPath.Scalar && KernelPaths.IsSupported(p)))
        {
            using var mm = new MatMul(1, path);
            var batch = new float[T * N];
            mm.Run(x, T, w, batch, N);
            var alone = new float[N];
            for (int t = 0; t < T; t++)
            {
                mm.Run(x[(t * K)..((t + 1) * K)], 1, w, alone, N);
                Assert.Equal(alone, batch[(t * N)..((t + 1) * N)]);
            }
            first ??= batch;
            Assert.Equal(first, batch); // the vector paths chain each output's FMAs in the same order
        }
    }

    [Fact]
    public void Bf16_round_trip_and_rounding()
    {
        Assert.Equal(1.0f, Bf16.ToF32(Bf16.FromF32(1.0f)));
        Assert.Equal(0x3F80, Bf16.FromF32(1.0f));
        Assert.Equal(0x3F81, Bf16.FromF32(BitConverter.Int32BitsToSingle(0x3F80C000))); // above half → up
        Assert.Equal(0x3F80, Bf16.FromF32(BitConverter.Int32BitsToSingle(0x3F808000))); // tie → even
        Assert.True(float.IsNaN(Bf16.ToF32(Bf16.FromF32(float.NaN))));
        var src = Enumerable.Range(0, 37).Select(i => (ushort)(0x3F80 + i)).ToArray();
        var dst = new float[37];
        Bf16.ToF32(src, dst);
        for (int i = 0; i < 37; i++) Assert.Equal(Bf16.ToF32(src[i]), dst[i]);
    }
}
