using TpLlm.Checkpoints;
using TpLlm.Quantization;
using TpLlm.Tensors;

namespace TpLlm.Tests.Quantization;

public class HessianCollectorTests
{
    [Theory]
    [InlineData(45)]
    [InlineData(300)] // rows in two chunks of the lower triangle
    public void It_sums_the_inputs_second_moment_of_the_weights_it_watches_only(int K)
    {
        const int N = 20;
        var rng = new Random(7);
        var w = TpLlm.Tensors.Formats.F32.F32Format.Instance.Create(N, K, DType.F32);
        var other = TpLlm.Tensors.Formats.F32.F32Format.Instance.Create(N, K, DType.F32);
        using var collector = new HessianCollector(2);
        collector.Watch(w);
        using var mm = new MatMul(1) { Observer = collector };
        var expected = new double[K * K];
        long rows = 0;
        foreach (int T in new[] { 1, 37, 5 })
        {
            var x = Enumerable.Range(0, T * K).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var y = new float[T * N];
            mm.Run(x, T, w, y, N);
            mm.Run(x, T, other, y, N); // not watched: not summed
            for (int t = 0; t < T; t++)
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) expected[i * K + j] += (double)x[t * K + i] * x[t * K + j];
            rows += T;
        }
        var (xtx, seen) = collector.Of(w);
        Assert.Equal(rows, seen);
        for (int i = 0; i < K * K; i++) Assert.True(Math.Abs(xtx[i] - expected[i]) < 1e-4, $"XᵀX[{i / K}, {i % K}] = {xtx[i]}, expected {expected[i]}");
        Assert.Throws<TpLlmException>(() => collector.Of(other));
    }
}
