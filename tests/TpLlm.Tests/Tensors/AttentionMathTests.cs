using TpLlm.Tensors;

namespace TpLlm.Tests.Tensors;

public class AttentionMathTests
{
    // head dims around the vector width (8 or 16 floats) and real ones (64, 128); 1 to 7 query heads per KV head
    // (MHA, Llama 3's 4, Qwen2's 7: quads and single heads); positions 1 to a few hundred
    [Theory]
    [InlineData(1, 1, 0, 1)]
    [InlineData(7, 3, 1, 2)]
    [InlineData(8, 5, 0, 4)]
    [InlineData(9, 17, 2, 5)]
    [InlineData(63, 1, 1, 1)]
    [InlineData(64, 200, 0, 4)]
    [InlineData(64, 33, 3, 7)]
    [InlineData(65, 40, 1, 4)]
    [InlineData(128, 129, 2, 3)]
    public void Scores_and_weighted_sum_match_a_double_reference(int d, int n, int kvHead, int heads)
    {
        var rng = new Random(d * 1000 + n * 10 + heads);
        int stride = (kvHead + 2) * d, offset = kvHead * d;
        float[] Random(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var keys = Random((n + 1) * stride);
        var values = Random((n + 1) * stride);
        var q = Random(heads * d);
        var scores = new float[heads * n + 1];
        scores[^1] = float.NaN; // past the scores asked for: must stay untouched
        AttentionMath.Scores(q, heads, keys, stride, offset, 0.125f, scores.AsSpan(0, heads * n));
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < n; j++)
            {
                double expected = 0;
                for (int c = 0; c < d; c++) expected += (double)q[h * d + c] * keys[j * stride + offset + c];
                Assert.True(Math.Abs(expected * 0.125 - scores[h * n + j]) <= 1e-5 * Math.Sqrt(d), $"d={d} head {h} score {j}: {scores[h * n + j]} vs {expected * 0.125}");
            }
        Assert.True(float.IsNaN(scores[^1]));

        var p = Random(heads * n);
        var output = Enumerable.Repeat(float.NaN, heads * d + 1).ToArray();
        AttentionMath.WeightedSum(p, heads, values, stride, offset, output.AsSpan(0, heads * d));
        for (int h = 0; h < heads; h++)
            for (int c = 0; c < d; c++)
            {
                double expected = 0;
                for (int j = 0; j < n; j++) expected += (double)p[h * n + j] * values[j * stride + offset + c];
                Assert.True(Math.Abs(expected - output[h * d + c]) <= 1e-5 * Math.Max(1, Math.Sqrt(n)), $"d={d} head {h} out {c}: {output[h * d + c]} vs {expected}");
            }
        Assert.True(float.IsNaN(output[^1]), "wrote past the heads");
    }

    [Fact]
    public void A_head_or_positions_outside_the_cache_are_refused_with_the_numbers()
    {
        var cache = new float[4 * 16];
        var e = Assert.Throws<ArgumentException>(() => AttentionMath.Scores(new float[8], 1, cache, 16, 12, 1, new float[2]));
        Assert.Contains("offset 12", e.Message);
        Assert.Contains("rows of 16", e.Message);
        e = Assert.Throws<ArgumentException>(() => AttentionMath.WeightedSum(new float[5], 1, cache, 16, 8, new float[8]));
        Assert.Contains("5 positions", e.Message);
        Assert.Contains("holds 64", e.Message);
        e = Assert.Throws<ArgumentException>(() => AttentionMath.Scores(new float[10], 4, cache, 16, 0, 1, new float[8]));
        Assert.Contains("10 queries do not split into 4 heads", e.Message);
    }
}
