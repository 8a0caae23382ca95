using TpLlm.Tensors;

namespace TpLlm.Tests.Tensors;

public class AttentionMathTests
{
    // head dims around the vector width (8 or 16 floats) and real ones (64, 128); positions 1 to a few hundred
    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(7, 3, 1)]
    [InlineData(8, 5, 0)]
    [InlineData(9, 17, 2)]
    [InlineData(63, 1, 1)]
    [InlineData(64, 200, 0)]
    [InlineData(64, 33, 3)]
    [InlineData(65, 40, 1)]
    [InlineData(128, 129, 2)]
    public void Scores_and_weighted_sum_match_a_double_reference(int d, int n, int head)
    {
        var rng = new Random(d * 1000 + n);
        int heads = head + 2, stride = heads * d, offset = head * d;
        var keys = Enumerable.Range(0, (n + 1) * stride).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var values = Enumerable.Range(0, (n + 1) * stride).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var q = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var scores = new float[n + 1];
        scores[n] = float.NaN; // past the positions asked for: must stay untouched
        AttentionMath.Scores(q, keys, stride, offset, 0.125f, scores.AsSpan(0, n));
        for (int j = 0; j < n; j++)
        {
            double expected = 0;
            for (int c = 0; c < d; c++) expected += (double)q[c] * keys[j * stride + offset + c];
            Assert.True(Math.Abs(expected * 0.125 - scores[j]) <= 1e-5 * Math.Sqrt(d), $"d={d} score {j}: {scores[j]} vs {expected * 0.125}");
        }
        Assert.True(float.IsNaN(scores[n]));

        var p = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var output = Enumerable.Repeat(float.NaN, d + 1).ToArray();
        AttentionMath.WeightedSum(p, values, stride, offset, output.AsSpan(0, d));
        for (int c = 0; c < d; c++)
        {
            double expected = 0;
            for (int j = 0; j < n; j++) expected += (double)p[j] * values[j * stride + offset + c];
            Assert.True(Math.Abs(expected - output[c]) <= 1e-5 * Math.Max(1, Math.Sqrt(n)), $"d={d} out {c}: {output[c]} vs {expected}");
        }
        Assert.True(float.IsNaN(output[d]), "wrote past the head");
    }

    [Fact]
    public void A_head_or_positions_outside_the_cache_are_refused_with_the_numbers()
    {
        var cache = new float[4 * 16];
        var e = Assert.Throws<ArgumentException>(() => AttentionMath.Scores(new float[8], cache, 16, 12, 1, new float[2]));
        Assert.Contains("offset 12", e.Message);
        Assert.Contains("rows of 16", e.Message);
        e = Assert.Throws<ArgumentException>(() => AttentionMath.WeightedSum(new float[5], cache, 16, 8, new float[8]));
        Assert.Contains("5 positions", e.Message);
        Assert.Contains("holds 64", e.Message);
    }
}
