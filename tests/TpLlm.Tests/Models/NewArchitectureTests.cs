using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;

namespace TpLlm.Tests.Models;

/// <summary>
/// Qwen3 and Gemma 3 against their float64 references (an independent numpy pass written from transformers' modeling
/// code, cross-checked by llama.cpp; tests/fixtures/*/README.md): greedy continuations (logits at every position and tp:
/// <see cref="ModelFixtureTests"/>), the sliding-window ring, Mistral's window, logit soft-capping.
/// </summary>
public class NewArchitectureTests
{
    internal static string Folder(string model) => model == "qwen3-mini" ? Paths.Qwen3Mini : Paths.Gemma3Mini;

    [Theory]
    [InlineData("qwen3-mini", 1)]
    [InlineData("qwen3-mini", 3)]
    [InlineData("gemma3-mini", 2)]
    [InlineData("gemma3-mini", 3)]
    public void Greedy_continuations_equal_the_reference(string model, int tp)
    {
        string folder = Folder(model);
        using var reference = new SafetensorsFile(Path.Combine(folder, "reference.safetensors"));
        using var f = ModelFolder.Open(folder);
        for (int p = 0; p < 3; p++)
        {
            var ids = reference.ReadI64($"prompt{p}.input_ids").Select(i => (int)i).ToArray();
            var greedy = reference.ReadI64($"prompt{p}.greedy").Select(i => (int)i).ToArray();
            var margins = reference.ReadF32($"prompt{p}.greedy_margin");
            var got = ThreadRanks.Run(tp, comm =>
            {
                using var m = DecoderModel.Load(f.Config, f.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
                return new Generator(m, f.Config.VocabSize, []).Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = greedy.Length, IgnoreEos = true }])[0].Tokens;
            })[0];
            // equal up to the first step whose margin is below what f32 can decide (none here: the smallest is 0.028)
            int n = Array.FindIndex(margins, mg => mg < 1e-3f) is var k && k >= 0 ? k + 1 : greedy.Length;
            Assert.Equal(greedy[..n], got[..n]);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Sliding_window_rings_give_the_same_tokens_as_keeping_every_position(int tp)
    {
        // 100 prompt tokens (two pieces of at most RingChunk) and 120 generated: positions far past a ring of 16 + 63,
        // which the references (60 positions) never wrap; keeping every position and masking is what they verified
        using var f = ModelFolder.Open(Paths.Gemma3Mini);
        var prompt = Enumerable.Range(0, 100).Select(i => (i * 37 + 11) % 2000).ToArray();
        var request = new GenerationRequest { PromptIds = prompt, MaxNewTokens = 120, IgnoreEos = true, WantLogprobs = true, TopLogprobs = 3 };
        GenerationResult Run(bool rings) => ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(f.Config, f.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, SlidingWindowRings = rings });
            Assert.Equal(rings ? 16 + KvCache.RingChunk - 1 : 512, m.Cache.Capacity(0));
            Assert.Equal(512, m.Cache.Capacity(5)); // the global layer
            return new Generator(m, f.Config.VocabSize, []).Generate([request])[0];
        })[0];
        var ring = Run(true);
        var full = Run(false);
        Assert.Equal(full.Tokens, ring.Tokens);
        for (int i = 0; i < full.Tokens.Length; i++) Assert.Equal(full.Logprobs![i].Logprob, ring.Logprobs![i].Logprob, 1e-4f);
    }

    [Fact]
    public void Mistral_sliding_window_limits_attention_through_the_same_mechanism()
    {
        // llama3-mini's weights as a Mistral with a window of 4: positions 0..3 see what Llama sees, later ones less
        var dir = FolderVariant.WithConfig(Paths.Llama3Mini, c => { c["model_type"] = "mistral"; c["sliding_window"] = 4; });
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var f = ModelFolder.Open(dir);
        Assert.All(f.Config.Layers, l => Assert.Equal(4, l.SlidingWindow));
        var ids = reference.ReadI64("prompt0.input_ids").Select(i => (int)i).ToArray();
        var expected = reference.ReadF32("prompt0.logits");
        int T = ids.Length, V = f.Config.VocabSize;
        var logits = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(f.Config, f.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            var h = new float[T * f.Config.HiddenSize];
            m.Forward(ids, [new SequenceChunk(0, 0, T)], h, allPositions: true);
            var l = new float[T * V];
            m.Head.Forward(h, T, l);
            return l;
        })[0];
        for (int t = 0; t < T; t++)
        {
            float max = 0;
            for (int v = 0; v < V; v++) max = Math.Max(max, Math.Abs(logits[t * V + v] - expected[t * V + v]));
            if (t < 4) Assert.True(max <= 1e-4f, $"position {t} sees its whole past: {max}");
            else Assert.True(max > 1e-3f, $"position {t} must not see past the window: {max}");
        }
    }

    [Theory]
    [InlineData(TpLlm.Parallel.LmHeadStrategy.ColumnParallel)]
    [InlineData(TpLlm.Parallel.LmHeadStrategy.RowParallel)]
    public void Final_logit_softcapping_caps_every_logit_on_its_rank(TpLlm.Parallel.LmHeadStrategy strategy)
    {
        var dir = FolderVariant.WithConfig(Paths.Llama3Mini, c => c["final_logit_softcapping"] = 3.0);
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var f = ModelFolder.Open(dir);
        var hidden = reference.ReadF32("prompt0.hidden");
        var expected = reference.ReadF32("prompt0.logits");
        int T = hidden.Length / 64, V = f.Config.VocabSize;
        var (full, local) = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(f.Config, f.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, HeadStrategy = strategy });
            var l = new float[T * V];
            m.Head.Forward(hidden, T, l);
            float[]? slice = null;
            if (m.Head is TpLlm.Parallel.IVocabParallelHead c) c.ForwardLocal(hidden, T, slice = new float[T * c.Partition.ShardSize]);
            return (l, slice);
        })[0];
        for (int i = 0; i < full.Length; i++) Assert.Equal(3 * MathF.Tanh(expected[i] / 3), full[i], 1e-4f);
        if (local is not null) // rank 0's slice: vocabulary rows [0, V_pad/2)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < 100; v++) Assert.Equal(full[t * V + v], local[t * (local.Length / T) + v], 1e-5f);
    }
}
