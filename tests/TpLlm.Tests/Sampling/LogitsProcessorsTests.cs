using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Tests.Sampling;

/// <summary>min_tokens, logit bias and penalties as the logits processors apply them (<see cref="LogitsProcessors"/>), against vLLM's rule.</summary>
public class LogitsProcessorsTests
{
    /// <summary>vLLM's rule written out over the full vocabulary: bias, then repetition over prompt ∪ output, then frequency and presence over output.</summary>
    private static float[] Reference(float[] row, int[] prompt, int[] output, SamplingParams p)
    {
        var r = (float[])row.Clone();
        for (int v = 0; v < r.Length; v++)
        {
            if (p.LogitBias?.TryGetValue(v, out float bias) == true) r[v] += bias;
            int n = output.Count(t => t == v);
            if (p.RepetitionPenalty != 1 && (n > 0 || prompt.Contains(v)))
                r[v] = r[v] > 0 ? r[v] / p.RepetitionPenalty : r[v] * p.RepetitionPenalty;
            if (n > 0) r[v] -= p.FrequencyPenalty * n + p.PresencePenalty;
        }
        return r;
    }

    [Fact]
    public void Each_rank_penalizes_exactly_its_slice_of_the_reference_and_restores_the_raw_logits()
    {
        var rng = new Random(5);
        const int V = 1001, B = 4, slots = 6;
        var ps = new[]
        {
            new SamplingParams { RepetitionPenalty = 1.3f },
            new SamplingParams { PresencePenalty = 0.7f, FrequencyPenalty = -0.4f, LogitBias = new Dictionary<int, float> { [3] = 5f, [500] = -100f, [999] = 7f } },
            SamplingParams.Greedy, // no penalties: untouched
            // a bias on ids in the output (< 60), in the prompt, past the samplable ids (998+), and on its own
            new SamplingParams { PresencePenalty = -1.5f, FrequencyPenalty = 2f, RepetitionPenalty = 0.6f, LogitBias = new Dictionary<int, float> { [1] = -3f, [17] = 40f, [998] = 1f, [700] = -0.5f } },
        };
        var rowSlot = new[] { 5, 0, 2, 3 }; // rows sit in slots in any order
        var full = Enumerable.Range(0, B * V).Select(_ => (float)(rng.NextDouble() * 20 - 10)).ToArray();
        var prompts = Enumerable.Range(0, B).Select(_ => Enumerable.Range(0, 30).Select(_ => rng.Next(V)).ToArray()).ToArray();
        var outputs = Enumerable.Range(0, B).Select(_ => Enumerable.Range(0, 40).Select(_ => rng.Next(60)).ToArray()).ToArray(); // repeats
        int samplable = V - 7; // ids past the tokenizer are never touched
        foreach (int tp in new[] { 1, 2, 3, 5 })
        {
            var part = new VocabPartition(V, tp, 16);
            for (int rank = 0; rank < tp; rank++)
            {
                int start = part.Start(rank), stride = part.ShardSize, count = Math.Clamp(samplable - start, 0, stride);
                var local = new float[B * stride];
                for (int b = 0; b < B; b++)
                    for (int c = 0; c < part.RealRows(rank); c++) local[b * stride + c] = full[b * V + start + c];
                var raw = (float[])local.Clone();
                var penalties = new LogitsProcessors(new VocabSlice(start, count, stride), slots, [], context: 256);
                penalties.Begin(1, new([start, start, 3], new SamplingParams { RepetitionPenalty = 9 }, [])); // an earlier sequence in slot 1, never applied
                for (int b = 0; b < B; b++)
                {
                    penalties.Begin(rowSlot[b], new([0, 1, 2], ps[0], [])); // a slot's earlier sequence is forgotten at Begin
                    penalties.Record(rowSlot[b], 1);
                    penalties.Begin(rowSlot[b], new(prompts[b], ps[b], []));
                    foreach (int t in outputs[b]) penalties.Record(rowSlot[b], t);
                }
                penalties.Apply(local, rowSlot, B);
                for (int b = 0; b < B; b++)
                {
                    var expected = Reference(full[(b * V)..((b + 1) * V)], prompts[b], outputs[b], ps[b]);
                    for (int c = 0; c < stride; c++)
                    {
                        float want = c < count ? expected[start + c] : raw[b * stride + c];
                        Assert.True(want == local[b * stride + c], $"tp {tp} rank {rank} row {b} id {start + c}: {local[b * stride + c]} ≠ {want}");
                    }
                }
                penalties.Restore(local);
                Assert.Equal(raw, local);
            }
        }
    }

    [Fact]
    public void Min_tokens_ban_end_of_sequence_and_stop_ids_on_their_owner_until_reached()
    {
        const int V = 50;
        int[] eos = [7, 40], stop = [3];
        var part = new VocabPartition(V, 2, 8);
        for (int rank = 0; rank < 2; rank++)
            foreach (bool ignoreEos in new[] { false, true })
            {
                int start = part.Start(rank), stride = part.ShardSize, count = part.RealRows(rank);
                var penalties = new LogitsProcessors(new VocabSlice(start, count, stride), 2, eos, context: 256);
                penalties.Begin(1, new([5], new SamplingParams { MinTokens = 2 }, stop, ignoreEos));
                var banned = (ignoreEos ? stop : [.. eos, .. stop]).Where(id => id >= start && id < start + count).Select(id => id - start).ToHashSet();
                for (int generated = 0; generated <= 3; generated++)
                {
                    var row = Enumerable.Range(0, stride).Select(c => (float)c).ToArray();
                    penalties.Apply(row, [1], 1);
                    for (int c = 0; c < stride; c++)
                        Assert.Equal(generated < 2 && banned.Contains(c) ? float.NegativeInfinity : c, row[c]);
                    penalties.Restore(row);
                    Assert.Equal(Enumerable.Range(0, stride).Select(c => (float)c), row);
                    penalties.Record(1, 20); // any token counts toward the minimum, owned or not
                }
            }
    }

    [Fact]
    public void Out_of_range_penalties_are_refused_with_the_option_and_value()
    {
        static string Cli(SamplingParams p) => Assert.Throws<InvalidRequestException>(() => p.Validate()).MessageNaming(TpLlm.Cli.CliRunner.OptionName);
        Assert.Contains("--presence-penalty 2.5", Cli(new SamplingParams { PresencePenalty = 2.5f }));
        Assert.Contains("--frequency-penalty -3", Cli(new SamplingParams { FrequencyPenalty = -3f }));
        Assert.Contains("--repetition-penalty 0", Cli(new SamplingParams { RepetitionPenalty = 0f }));
        Assert.Contains("--min-tokens -1", Cli(new SamplingParams { MinTokens = -1 }));
        Assert.Contains("--repetition-penalty NaN", Cli(new SamplingParams { RepetitionPenalty = float.NaN }));
        Assert.Contains("presence_penalty 2.5", Assert.Throws<InvalidRequestException>(() => new SamplingParams { PresencePenalty = 2.5f }.Validate()).Message);
    }

    [Fact]
    public void Penalized_generation_is_the_same_on_every_path_and_tp_and_the_penalties_act()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var ids = folder.Tokenizer!.Encode("A day without");
        var plain = new GenerationRequest { PromptIds = ids, MaxNewTokens = 40, IgnoreEos = true };
        var requests = new[]
        {
            plain with { Sampling = new SamplingParams { RepetitionPenalty = 1000f } }, // greedy, every prompt or output token all but banned
            plain with { Sampling = new SamplingParams { PresencePenalty = 1.5f, FrequencyPenalty = 1f } },
            plain with { Sampling = new SamplingParams { Temperature = 0.9f, TopK = 50, Seed = 3, PresencePenalty = 2f, RepetitionPenalty = 1.2f } },
            plain with { Sampling = new SamplingParams { Temperature = 0.9f, TopP = 0.95f, Seed = 4, FrequencyPenalty = 2f, LogitBias = new Dictionary<int, float> { [13] = 3f } }, TopLogprobs = 3 },
            plain,
        };
        (int[][] Tokens, float[] Logprobs) Run(int tp, bool gather, bool toRoot) => ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxSequences = requests.Length });
            var results = new Generator(m, folder.SamplableVocab, []) { GatherLogits = gather, GatherToRoot = toRoot }.Generate(requests);
            return (results.Select(r => r.Tokens).ToArray(), results[3].Logprobs?.SelectMany(l => l.Top.Select(t => t.Logprob).Prepend(l.Logprob)).ToArray() ?? []);
        })[0];
        var (baseline, logprobs) = Run(1, false, false);
        foreach (var (tokens, lps) in new[] { Run(2, false, false), Run(3, false, false), Run(2, true, false), Run(2, true, true) })
        {
            Assert.Equal(baseline, tokens);
            // logprobs are the model's on every path: the vocab-parallel ones are taken after the raw logits are restored
            Assert.Equal(logprobs.Length, lps.Length);
            for (int i = 0; i < lps.Length; i++) Assert.Equal(logprobs[i], lps[i], 1e-4f);
        }

        // and they are the raw model's: step k's top-3 equal those of the first step after the prompt extended by the k tokens before it
        var sampled = baseline[3];
        var raw = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxSequences = 3 });
            return new Generator(m, folder.SamplableVocab, []).Generate(
                [.. new[] { 10, 20, 30 }.Select(k => new GenerationRequest { PromptIds = [.. ids, .. sampled[..k]], MaxNewTokens = 1, TopLogprobs = 3 })]);
        })[0];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                Assert.Equal(raw[i].Logprobs![0].Top[j].Logprob, logprobs[(10 * (i + 1)) * 4 + 1 + j], 1e-4f);

        // with every seen token banned, greedy never repeats one nor copies the prompt
        Assert.Equal(baseline[0].Length, baseline[0].Distinct().Count());
        Assert.Empty(baseline[0].Intersect(ids));
        // the unpenalized greedy continuation repeats tokens, so the bans above had work to do
        Assert.True(baseline[4].Distinct().Count() < baseline[4].Length, "the plain continuation has no repeats; the test proves nothing");
        Assert.NotEqual(baseline[4], baseline[1]);
    }
}
