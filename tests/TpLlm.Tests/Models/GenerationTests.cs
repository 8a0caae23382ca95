using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Sampling;
using TpLlm.Tensors;

namespace TpLlm.Tests.Models;

public class GenerationTests
{
    // Logits here match the reference to ~1e-5 (ModelFixtureTests), so any step whose top-2 margin exceeds 1e-4 must be reproduced.
    private const float MarginTolerance = 1e-4f;

    [Fact]
    public void Greedy_tokens_equal_the_reference_for_all_prompts_batched_at_tp_1_to_4()
    {
        foreach (var model in new[] { "llama3-mini", "fortune-llama" })
        {
            var (folderPath, refPath, prompts) = ModelFixtureTests.Fixture(model);
            using var reference = new SafetensorsFile(refPath);
            using var folder = ModelFolder.Open(folderPath);
            var requests = Enumerable.Range(0, prompts).Select(p => new GenerationRequest
            {
                PromptIds = reference.ReadI64($"prompt{p}.input_ids").Select(i => (int)i).ToArray(),
                MaxNewTokens = reference.ReadI64($"prompt{p}.greedy").Length,
                IgnoreEos = true, // the reference ran past end-of-text
            }).ToArray();
            var perTp = new List<GenerationResult[]>();
            for (int tp = 1; tp <= 4; tp++)
            {
                perTp.Add(ThreadRanks.Run(tp, comm =>
                {
                    using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { MaxSequences = prompts, ComputeThreads = 1 });
                    return new Generator(m, folder.SamplableVocab, folder.Config.EosTokenIds).Generate(requests);
                })[0]);
            }
            for (int p = 0; p < prompts; p++)
            {
                var expected = reference.ReadI64($"prompt{p}.greedy").Select(i => (int)i).ToArray();
                var margins = reference.ReadF32($"prompt{p}.greedy_margin");
                int firstLow = Array.FindIndex(margins, m => m < MarginTolerance);
                int compare = firstLow < 0 ? expected.Length : firstLow; // from a low-margin step on, f32 may legitimately pick the other token
                Assert.True(compare >= 5, $"{model} prompt {p}: only {compare} tokens comparable");
                foreach (var results in perTp)
                    Assert.Equal(expected[..compare], results[p].Tokens[..compare]);
                // and the tp runs agree with each other over the whole continuation
                foreach (var results in perTp) Assert.Equal(perTp[0][p].Tokens, results[p].Tokens);
            }
        }
    }

    [Fact]
    public void Generation_stops_at_eos_and_says_why()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var ids = folder.Tokenizer!.Encode("A day without");
        var result = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxContext = 40 });
            var g = new Generator(m, folder.SamplableVocab, folder.Config.EosTokenIds);
            return (eos: g.Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 100 }])[0],
                    ctx: g.Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 100, IgnoreEos = true }])[0]);
        })[0];
        Assert.Equal(FinishReason.Eos, result.eos.Reason);
        Assert.Equal(50256, result.eos.Tokens[^1]);
        Assert.Equal(24, result.eos.Tokens.Length);
        Assert.Equal(FinishReason.ContextFull, result.ctx.Reason);
        Assert.Equal(40 - ids.Length, result.ctx.Tokens.Length);
    }

    [Fact]
    public void Reference_top5_logprobs_are_reproduced_through_the_model()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var ids = reference.ReadI64("prompt1.input_ids").Select(i => (int)i).ToArray();
        var topIds = reference.ReadI64("prompt1.top5_ids");
        var topLp = reference.ReadF32("prompt1.top5_logprobs");
        var res = ThreadRanks.Run(3, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            return new Generator(m, folder.SamplableVocab, []).Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 1, TopLogprobs = 5 }])[0];
        })[0];
        int last = ids.Length - 1;
        var lp = res.Logprobs![0];
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal((int)topIds[last * 5 + i], lp.Top[i].Id);
            Assert.Equal(topLp[last * 5 + i], lp.Top[i].Logprob, 1e-3f);
        }
        Assert.Equal(lp.Top[0].Logprob, lp.Logprob); // greedy picked the top-1
    }

    [Fact]
    public void A_hugging_face_cache_snapshot_of_symbolic_links_loads_and_reproduces_the_reference()
    {
        // the hub cache layout: snapshots/<revision>/<file> are links to blobs/<hash>
        string cache = Paths.TempDir();
        string blobs = Directory.CreateDirectory(Path.Combine(cache, "blobs")).FullName;
        string snapshot = Directory.CreateDirectory(Path.Combine(cache, "snapshots", "0123abcd")).FullName;
        foreach (var file in Directory.GetFiles(Paths.FortuneLlama))
        {
            string blob = Path.Combine(blobs, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(file))));
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        using var folder = ModelFolder.Open(snapshot);
        var ids = reference.ReadI64("prompt1.input_ids").Select(i => (int)i).ToArray();
        var topIds = reference.ReadI64("prompt1.top5_ids");
        var lp = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            return new Generator(m, folder.SamplableVocab, []).Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 1, TopLogprobs = 5 }])[0];
        })[0].Logprobs![0];
        int last = ids.Length - 1;
        Assert.Equal(Enumerable.Range(0, 5).Select(i => (int)topIds[last * 5 + i]), lp.Top.Select(t => t.Id));
    }

    [Fact]
    public void Vocab_parallel_sampling_and_gather_then_sample_agree_through_the_model()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var ids = folder.Tokenizer!.Encode("Computers are");
        var sampling = new SamplingParams { Temperature = 0.9f, TopP = 0.9f, TopK = 40, Seed = 11 };
        var outs = ThreadRanks.Run(3, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            var req = new GenerationRequest { PromptIds = ids, MaxNewTokens = 30, Sampling = sampling, IgnoreEos = true };
            var parallel = new Generator(m, folder.SamplableVocab, []).Generate([req])[0].Tokens;
            var gathered = new Generator(m, folder.SamplableVocab, []) { GatherLogits = true }.Generate([req])[0].Tokens;
            var toRoot = new Generator(m, folder.SamplableVocab, []) { GatherLogits = true, GatherToRoot = true }.Generate([req])[0].Tokens;
            return (parallel, gathered, toRoot);
        });
        foreach (var o in outs)
        {
            Assert.Equal(o.gathered, o.parallel);
            Assert.Equal(o.gathered, o.toRoot); // every rank gets rank 0's tokens
        }
    }

    [Theory]
    [InlineData("int8")]
    [InlineData("q4")]
    public void Quantization_leaves_the_lm_head_and_embedding_in_bf16_with_unchanged_logits(string format)
    {
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var folder = ModelFolder.Open(Paths.Llama3Mini);
        var hidden = reference.ReadF32("prompt0.hidden");
        int T = hidden.Length / 64;
        var (plain, quant) = ThreadRanks.Run(2, comm =>
        {
            using var a = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            using var b = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, Quantization = WeightFormats.ForQuantize(format) });
            foreach (var l in b.Layers)
                Assert.All([l.Mlp.Down.Weight, l.Mlp.GateUp.Weight, l.Attention.Qkv.Weight, l.Attention.O.Weight], w => Assert.Equal(format, w.Format.Name));
            Assert.Equal("bf16", b.Head.Weight.Format.Name);
            Assert.Equal("bf16", b.Embedding.Weight.Format.Name);
            var la = new float[T * 50257];
            var lb = new float[T * 50257];
            a.Head.Forward(hidden, T, la);
            b.Head.Forward(hidden, T, lb);
            return (la, lb);
        })[0];
        Assert.Equal(plain, quant);
    }

    [Fact]
    public void Quantized_model_still_tracks_the_reference_logits()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var ids = reference.ReadI64("prompt0.input_ids").Select(i => (int)i).ToArray();
        var expected = reference.ReadF32("prompt0.logits");
        int T = ids.Length, V = 50257;
        var logits = ThreadRanks.Run(1, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { Quantization = WeightFormats.ForQuantize("int8"), ComputeThreads = 1 });
            var h = new float[T * 128];
            m.Forward(ids, [new SequenceChunk(0, 0, T)], h, allPositions: true);
            var l = new float[T * V];
            m.Head.Forward(h, T, l);
            return l;
        })[0];
        // int8 moves logits a little, not a lot: the argmax of the last position survives
        int argmax(float[] x, int t) => Enumerable.Range(0, V).MaxBy(v => x[t * V + v]);
        Assert.Equal(argmax(expected, T - 1), argmax(logits, T - 1));
        float max = 0;
        for (int i = 0; i < logits.Length; i++) max = Math.Max(max, Math.Abs(logits[i] - expected[i]));
        Assert.InRange(max, 1e-4f, 0.5f);
    }

    [Fact]
    public void Tied_embedding_and_lm_head_share_one_shard_per_rank()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        ThreadRanks.Run(3, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            Assert.Same(m.Embedding.Weight, m.Head.Weight);
            Assert.Equal(16753, m.Head.Weight.Rows);
        });
        using var mini = ModelFolder.Open(Paths.Llama3Mini);
        ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(mini.Config, mini.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            Assert.NotSame(m.Embedding.Weight, m.Head.Weight);
        });
    }

    [Fact]
    public void Lm_head_loads_unquantized_when_the_config_has_a_quantization_config()
    {
        var dir = Paths.TempDir();
        foreach (var f in Directory.GetFiles(Paths.Llama3Mini)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = File.ReadAllText(Path.Combine(dir, "config.json"));
        File.WriteAllText(Path.Combine(dir, "config.json"), config.Replace("\"vocab_size\"", "\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true},\n  \"vocab_size\""));
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var folder = ModelFolder.Open(dir);
        Assert.True(folder.Config.HasQuantizationConfig);
        var hidden = reference.ReadF32("prompt0.hidden");
        var expected = reference.ReadF32("prompt0.logits");
        int T = hidden.Length / 64;
        var logits = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, Quantization = WeightFormats.ForQuantize("q4") });
            Assert.Equal("bf16", m.Head.Weight.Format.Name);
            var l = new float[T * 50257];
            m.Head.Forward(hidden, T, l);
            return l;
        })[0];
        for (int i = 0; i < logits.Length; i++) Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-4f);
    }
}
