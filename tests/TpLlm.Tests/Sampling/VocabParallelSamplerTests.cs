using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Tests.Sampling;

public class VocabParallelSamplerTests
{
    /// <summary>Shards full rows [B, V] into rank r's [B, V_pad/tp] with zero padding (as the LM head produces).</summary>
    private static float[] Shard(float[] full, int B, int V, VocabPartition p, int rank)
    {
        var local = new float[B * p.ShardSize];
        for (int b = 0; b < B; b++)
            for (int c = 0; c < p.RealRows(rank); c++) local[b * p.ShardSize + c] = full[b * V + p.Start(rank) + c];
        return local;
    }

    private static float[] RandomLogits(Random rng, int B, int V, bool adversarial)
    {
        var x = new float[B * V];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 8 - 12); // all negative: padding's 0 would win if unmasked
        if (adversarial)
            for (int b = 0; b < B; b++)
            {
                switch (b % 3)
                {
                    case 0: // ties of the max in several shards
                        for (int k = 0; k < 5; k++) x[b * V + rng.Next(V)] = -1f;
                        break;
                    case 1: // a row of −∞
                        x.AsSpan(b * V, V).Fill(float.NegativeInfinity);
                        break;
                    default: // −∞ except a couple of equal values
                        x.AsSpan(b * V, V).Fill(float.NegativeInfinity);
                        x[b * V + V - 1] = -3; x[b * V + V / 2] = -3;
                        break;
                }
            }
        return x;
    }

    [Fact]
    public void Greedy_equals_full_argmax_and_moves_only_a_pair_per_rank_and_row()
    {
        var rng = new Random(1);
        foreach (int V in new[] { 1, 7, 1000, 50257 })
            for (int tp = 1; tp <= 8; tp++)
            {
                const int B = 6;
                var full = RandomLogits(rng, B, V, adversarial: true);
                var part = new VocabPartition(V, tp, V > 100 ? 64 : 1);
                var results = ThreadRanks.Run(tp, comm =>
                {
                    var counting = new CountingCommunicator(comm);
                    var sampler = new VocabParallelSampler(counting, part);
                    var tokens = new int[B];
                    sampler.Greedy(Shard(full, B, V, part, comm.Rank), B, tokens);
                    return (tokens, bytes: counting.TotalBytesSent + counting.TotalBytesReceived);
                });
                for (int b = 0; b < B; b++)
                {
                    int expected = LocalReductions.ArgmaxScalar(full.AsSpan(b * V, V), 0).Id;
                    foreach (var (tokens, _) in results) Assert.Equal(expected, tokens[b]);
                }
                foreach (var (_, bytes) in results) Assert.True(bytes <= B * tp * 16L, $"V={V} tp={tp}: {bytes} bytes moved, limit {B * tp * 16}; gathering would move {B * V * 4}");
            }
    }

    public static IEnumerable<object[]> Modes() =>
    [
        [new SamplingParams { Temperature = 0.8f }],
        [new SamplingParams { Temperature = 1.3f, TopK = 20 }],
        [new SamplingParams { Temperature = 1f, TopP = 0.9f }],
        [new SamplingParams { Temperature = 0.7f, MinP = 0.05f }],
        [new SamplingParams { Temperature = 1f, TopK = 50, TopP = 0.8f, MinP = 0.01f }],
    ];

    [Theory]
    [MemberData(nameof(Modes))]
    public void Sampling_picks_the_same_tokens_as_gather_then_sample(SamplingParams p)
    {
        const int V = 301, B = 4, draws = 250;
        var rng = new Random(7);
        for (int tp = 1; tp <= 8; tp++)
        {
            var part = new VocabPartition(V, tp, 4);
            var rows = Enumerable.Range(0, draws).Select(_ => RandomLogits(rng, B, V, adversarial: false)).ToArray();
            foreach (var row in rows) row[rng.Next(V)] = row[rng.Next(V)]; // some exact ties
            var expected = new int[draws * B];
            var refRng = Enumerable.Range(0, B).Select(b => new SplitMix64((ulong)(b + 100 * tp))).ToArray();
            for (int d = 0; d < draws; d++)
                for (int b = 0; b < B; b++)
                    expected[d * B + b] = FullVocabSampler.Sample(rows[d].AsSpan(b * V, V), V, p, refRng[b]);
            var results = ThreadRanks.Run(tp, comm =>
            {
                var sampler = new VocabParallelSampler(comm, part);
                var rngs = Enumerable.Range(0, B).Select(b => new SplitMix64((ulong)(b + 100 * tp))).ToArray();
                var ps = Enumerable.Repeat(p, B).ToArray();
                var got = new int[draws * B];
                for (int d = 0; d < draws; d++) sampler.Sample(Shard(rows[d], B, V, part, comm.Rank), B, ps, rngs, got.AsSpan(d * B, B));
                return got;
            });
            foreach (var got in results) Assert.Equal(expected, got);
        }
    }

    [Fact]
    public void A_batch_of_mixed_modes_samples_each_row_as_gather_then_sample()
    {
        // greedy, top-k, top-p, min-p, plain and rows of −∞ side by side: the rows' collectives go together
        const int V = 257, draws = 60;
        SamplingParams[] modes =
        [
            new() { Temperature = 0 }, new() { Temperature = 1f, TopP = 0.7f }, new() { Temperature = 1.3f, TopK = 12 },
            new() { Temperature = 0.9f, MinP = 0.1f }, new() { Temperature = 1f }, new() { Temperature = 0.6f, TopP = 0.95f, MinP = 0.02f },
            new() { Temperature = 1f, TopK = 40, TopP = 0.5f },
        ];
        int B = modes.Length;
        var rng = new Random(11);
        for (int tp = 1; tp <= 5; tp++)
        {
            var part = new VocabPartition(V, tp, 2);
            var rows = Enumerable.Range(0, draws).Select(_ => RandomLogits(rng, B, V, adversarial: true)).ToArray();
            var refRng = Enumerable.Range(0, B).Select(b => new SplitMix64((ulong)(b + 7 * tp))).ToArray();
            var expected = new int[draws * B];
            for (int d = 0; d < draws; d++)
                for (int b = 0; b < B; b++)
                    expected[d * B + b] = modes[b].IsGreedy ? Argmax(rows[d].AsSpan(b * V, V)) : FullVocabSampler.Sample(rows[d].AsSpan(b * V, V), V, modes[b], refRng[b]);
            var results = ThreadRanks.Run(tp, comm =>
            {
                var sampler = new VocabParallelSampler(comm, part);
                var rngs = Enumerable.Range(0, B).Select(b => new SplitMix64((ulong)(b + 7 * tp))).ToArray();
                var got = new int[draws * B];
                for (int d = 0; d < draws; d++) sampler.Sample(Shard(rows[d], B, V, part, comm.Rank), B, modes, rngs, got.AsSpan(d * B, B));
                return got;
            });
            foreach (var got in results) Assert.Equal(expected, got);
        }
    }

    // greedy's reference: the first maximum, and id 0 for a row of −∞
    private static int Argmax(ReadOnlySpan<float> row) => LocalReductions.ArgmaxScalar(row, 0).Id is var id && id != int.MaxValue ? id : 0;

    [Theory]
    [InlineData(1f, 0, 0f)]      // plain
    [InlineData(0.9f, 0, 0f)]    // top-p
    [InlineData(1f, 20, 0f)]     // top-k
    [InlineData(1f, 0, 0.05f)]   // min-p
    public void Sixteen_rows_make_no_more_collectives_than_one(float topP, int topK, float minP)
    {
        const int V = 5000;
        var p = new SamplingParams { Temperature = 0.8f, TopP = topP, TopK = topK, MinP = minP };
        var rng = new Random(3);
        var part = new VocabPartition(V, 2, 8);
        long Collectives(int B)
        {
            var logits = RandomLogits(rng, B, V, adversarial: false);
            return ThreadRanks.Run(2, comm =>
            {
                var counting = new CountingCommunicator(comm);
                var sampler = new VocabParallelSampler(counting, part);
                var rngs = Enumerable.Range(0, B).Select(b => new SplitMix64((ulong)b)).ToArray();
                sampler.Sample(Shard(logits, B, V, part, comm.Rank), B, Enumerable.Repeat(p, B).ToArray(), rngs, new int[B]);
                return (counting.AllGathers.Calls + counting.AllReduces.Calls + counting.Broadcasts.Calls + counting.Gathers.Calls, counting.TotalBytesSent);
            }).Max(x => x.Item1);
        }
        long one = Collectives(1), sixteen = Collectives(16);
        Assert.True(sixteen <= one, $"16 rows: {sixteen} collectives, 1 row: {one}");
        Assert.True(one <= 40, $"{one} collectives for one row");
    }

    [Fact]
    public void Sampled_frequencies_follow_the_exact_distribution()
    {
        // p ∝ exp(x/T) over 6 tokens, top-k 4: chi-square against the exact probabilities
        var logits = new float[] { -1f, -1.5f, -2f, -0.5f, -4f, -2.5f };
        var p = new SamplingParams { Temperature = 1f, TopK = 4 };
        int V = logits.Length, n = 40_000;
        var kept = new[] { 3, 0, 1, 2 };
        double z = kept.Sum(i => Math.Exp(logits[i]));
        var counts = ThreadRanks.Run(3, comm =>
        {
            var part = new VocabPartition(V, 3);
            var sampler = new VocabParallelSampler(comm, part);
            var local = Shard(logits, 1, V, part, comm.Rank);
            var rng = new[] { new SplitMix64(42) };
            var c = new int[V];
            var tok = new int[1];
            for (int i = 0; i < n; i++)
            {
                sampler.Sample(local, 1, [p], rng, tok);
                c[tok[0]]++;
            }
            return c;
        })[0];
        Assert.Equal(0, counts[4]);
        Assert.Equal(0, counts[5]);
        double chi2 = kept.Sum(i =>
        {
            double e = n * Math.Exp(logits[i]) / z;
            return (counts[i] - e) * (counts[i] - e) / e;
        });
        Assert.True(chi2 < 16.27, $"chi-square {chi2:F2} with 3 degrees of freedom exceeds the 0.1 % critical value; counts {string.Join(",", counts)}");
    }

    [Fact]
    public void Logprobs_equal_full_log_softmax()
    {
        var rng = new Random(5);
        const int V = 1000, B = 3;
        var full = RandomLogits(rng, B, V, adversarial: false);
        for (int tp = 1; tp <= 8; tp++)
        {
            var part = new VocabPartition(V, tp, 64);
            var chosen = new[] { 5, 999, 500 };
            var results = ThreadRanks.Run(tp, comm => new VocabParallelSampler(comm, part).Logprobs(Shard(full, B, V, part, comm.Rank), B, chosen, 5));
            for (int b = 0; b < B; b++)
            {
                var lsm = FullVocabSampler.LogSoftmax(full.AsSpan(b * V, V), V);
                var order = Enumerable.Range(0, V).OrderByDescending(i => lsm[i]).ThenBy(i => i).Take(5).ToArray();
                foreach (var r in results)
                {
                    Assert.Equal(lsm[chosen[b]], r[b].Logprob, 1e-5);
                    Assert.Equal(order, r[b].Top.Select(t => t.Id).ToArray());
                    for (int i = 0; i < 5; i++) Assert.Equal(lsm[order[i]], r[b].Top[i].Logprob, 1e-5);
                }
            }
        }
    }

    [Theory]
    [InlineData(-0.5f, 0, 1f, 0f, "temperature", "--temperature")]
    [InlineData(1f, -1, 1f, 0f, "top_k", "--top-k")]
    [InlineData(1f, 0, 0f, 0f, "top_p", "--top-p")]
    [InlineData(1f, 0, 1.5f, 0f, "top_p", "--top-p")]
    [InlineData(1f, 0, 1f, 2f, "min_p", "--min-p")]
    public void Bad_sampling_parameters_name_the_field_and_the_cli_option(float t, int k, float topP, float minP, string field, string option)
    {
        var e = Assert.Throws<InvalidRequestException>(() => new SamplingParams { Temperature = t, TopK = k, TopP = topP, MinP = minP }.Validate());
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + " ", e.Message);
        Assert.StartsWith(option + " ", e.MessageNaming(TpLlm.Cli.CliRunner.OptionName));
    }
}
