using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gguf;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Tensors;
using TpLlm.Tensors.Formats.Bf16;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// GGUF files written from the fixtures as llama.cpp's converter writes them (<see cref="GgufConverter"/>): the same
/// logits as the safetensors folder, the same blocks as <c>--quantize</c>, the vocabulary from the metadata, and a
/// head that stays unquantized.
/// </summary>
public class GgufTests
{
    private static readonly Dictionary<string, string> Files = new();
    private static readonly Lock FilesLock = new();

    /// <summary>The fixture as GGUF with decoder matrices of <paramref name="weights"/> (made once per run).</summary>
    internal static string Gguf(string model, uint weights, uint? vocab = null)
    {
        string key = $"{model}-{weights}-{vocab}";
        lock (FilesLock)
        {
            if (Files.TryGetValue(key, out var f)) return f;
            var (folder, tokenizer) = model switch
            {
                "llama3-mini" => (Paths.Llama3Mini, Paths.FortuneLlama),
                "qwen3-mini" => (Paths.Qwen3Mini, null), // no tokenizer: a file without one
                _ => (Paths.FortuneLlama, (string?)null),
            };
            f = GgufConverter.Convert(folder, Path.Combine(Paths.TempDir(), $"{key}.gguf"), weights, vocab, tokenizerFolder: tokenizer);
            Files[key] = f;
            return f;
        }
    }

    // transformers rounds a bf16 model's RoPE inverse frequencies to bf16; llama.cpp (and so a GGUF file) does not:
    // the safetensors folder compared with a GGUF file runs with the config's dtype set to float32
    private static string FolderWithoutBf16Rope(string model) =>
        FolderVariant.WithConfig(model switch { "llama3-mini" => Paths.Llama3Mini, "qwen3-mini" => Paths.Qwen3Mini, _ => Paths.FortuneLlama },
            j => { j["dtype"] = "float32"; j["torch_dtype"] = "float32"; });

    private static float[][] Logits(string path, int tp, int[] ids, IWeightFormat? quantize = null)
    {
        using var folder = ModelFolder.Open(path);
        var c = folder.Config;
        return ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(c, folder.Checkpoint, comm, new ModelOptions { Quantization = quantize, ComputeThreads = 1 });
            var hidden = new float[ids.Length * c.HiddenSize];
            m.Forward(ids, [new SequenceChunk(0, 0, ids.Length)], hidden, allPositions: true);
            var logits = new float[ids.Length * c.VocabSize];
            m.Head.Forward(hidden, ids.Length, logits);
            return logits;
        });
    }

    private static int[] PromptIds(string model)
    {
        var (_, reference, _) = Models.ModelFixtureTests.Fixture(model);
        using var r = new SafetensorsFile(reference);
        return [.. r.ReadI64("prompt0.input_ids").Select(i => (int)i)];
    }

    private static float MaxDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [Theory]
    [InlineData("fortune-llama", GgufConverter.BF16, 1, 0f)]
    [InlineData("fortune-llama", GgufConverter.BF16, 3, 0f)]
    [InlineData("llama3-mini", GgufConverter.BF16, 2, 1e-5f)] // its Llama 3 RoPE scaling is f32 factors in the file
    [InlineData("fortune-llama", GgufConverter.F32, 2, 1e-4f)]
    [InlineData("llama3-mini", GgufConverter.F32, 1, 1e-4f)]
    [InlineData("fortune-llama", GgufConverter.F16, 1, 1e-3f)]
    [InlineData("llama3-mini", GgufConverter.F16, 3, 1e-3f)]
    [InlineData("qwen3-mini", GgufConverter.BF16, 1, 0f)] // qwen3: q/k norms, head_dim ≠ hidden/heads, q and k not permuted
    [InlineData("qwen3-mini", GgufConverter.BF16, 3, 0f)]
    public void Float_files_give_the_logits_of_the_safetensors_folder(string model, uint type, int tp, float bound)
    {
        var ids = PromptIds(model);
        var expected = Logits(FolderWithoutBf16Rope(model), tp, ids);
        var got = Logits(Gguf(model, type), tp, ids);
        for (int r = 0; r < tp; r++)
        {
            float diff = MaxDiff(got[r], expected[r]);
            Assert.True(diff <= bound, $"{model} {type} tp={tp}: max abs difference {diff} from the safetensors folder (bound {bound})");
        }
    }

    [Theory]
    [InlineData("fortune-llama", 1)]
    [InlineData("llama3-mini", 2)]
    public void A_gguf_file_is_within_the_reference_bound_of_transformers(string model, int tp)
    {
        // transformers' logits (bf16 RoPE frequencies) against the file's (llama.cpp's f32 frequencies)
        var (_, refPath, _) = Models.ModelFixtureTests.Fixture(model);
        using var reference = new SafetensorsFile(refPath);
        var expected = reference.ReadF32("prompt0.logits");
        foreach (var got in Logits(Gguf(model, GgufConverter.BF16), tp, PromptIds(model)))
        {
            float diff = MaxDiff(got, expected);
            Assert.True(diff <= 1e-2f, $"{model} tp={tp}: max abs error {diff} against transformers");
        }
    }

    [Theory]
    [InlineData("fortune-llama", GgufConverter.Q8_0, "int8", 1, 0f)]
    [InlineData("fortune-llama", GgufConverter.Q8_0, "int8", 3, 0f)]
    [InlineData("fortune-llama", GgufConverter.Q4_0, "q4", 2, 0f)]
    [InlineData("fortune-llama", GgufConverter.Q4_0, "q4", 3, 0f)]
    // llama3-mini's Llama 3 RoPE scaling comes as f32 factors in the file (rope_freqs.weight), as llama.cpp computes it
    [InlineData("llama3-mini", GgufConverter.Q4_0, "q4", 2, 1e-5f)]
    [InlineData("llama3-mini", GgufConverter.Q8_0, "int8", 1, 1e-5f)]
    [InlineData("qwen3-mini", GgufConverter.Q4_0, "q4", 2, 0f)]
    public void Quantized_files_give_what_quantizing_the_safetensors_gives(string model, uint type, string quantize, int tp, float bound)
    {
        var ids = PromptIds(model);
        var expected = Logits(FolderWithoutBf16Rope(model), tp, ids, WeightFormats.ForQuantize(quantize));
        var got = Logits(Gguf(model, type, GgufConverter.BF16), tp, ids); // the file's blocks kept as they are, no --quantize
        for (int r = 0; r < tp; r++)
        {
            if (bound == 0) Assert.Equal(expected[r], got[r]); // same blocks, same numbers
            else Assert.True(MaxDiff(got[r], expected[r]) <= bound, $"{model} {quantize} tp={tp}: max abs difference {MaxDiff(got[r], expected[r])}");
        }
    }

    [Fact]
    public void The_file_blocks_load_into_the_quantized_format_without_requantizing()
    {
        using var folder = ModelFolder.Open(Gguf("fortune-llama", GgufConverter.Q4_0, GgufConverter.BF16));
        using var st = ModelFolder.Open(Paths.FortuneLlama);
        var fromFile = new WeightLoader(folder.Checkpoint).LoadRows("model.layers.2.mlp.up_proj.weight", 0, 384, 384, 128);
        var quantized = new WeightLoader(st.Checkpoint).LoadRows("model.layers.2.mlp.up_proj.weight", 0, 384, 384, 128, WeightFormats.ForQuantize("q4"));
        Assert.Equal("q4", fromFile.Format.Name);
        for (int r = 0; r < 384; r += 7)
            for (int k = 0; k < 128; k++) Assert.Equal(quantized.Get(r, k), fromFile.Get(r, k));
        // q's rows come back in Hugging Face order (llama.cpp interleaves each head's rotary pairs)
        var q = new WeightLoader(folder.Checkpoint).LoadRows("model.layers.0.self_attn.q_proj.weight", 0, 128, 128, 128);
        var qRef = new WeightLoader(st.Checkpoint).LoadRows("model.layers.0.self_attn.q_proj.weight", 0, 128, 128, 128, WeightFormats.ForQuantize("q4"));
        for (int r = 0; r < 128; r++) Assert.Equal(qRef.Get(r, 5), q.Get(r, 5));
    }

    [Fact]
    public void A_quantized_embedding_is_widened_to_bf16_for_the_head_and_said_so()
    {
        using var folder = ModelFolder.Open(Gguf("fortune-llama", GgufConverter.Q8_0));
        Assert.Contains(folder.Notes, n => n.Contains("token_embd.weight is Q8_0") && n.Contains("bf16"));
        var rows = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions());
            var head = Assert.IsAssignableFrom<IVocabParallelHead>(m.Head);
            Assert.IsType<Bf16Format>(head.Weight.Format);
            Assert.False(head.Weight.Format.IsQuantized);
            Assert.Equal("int8", m.Layers[0].Mlp.GateUp.Weight.Format.Name); // the decoder keeps the file's Q8_0 blocks
            return head.Weight.Get(3, 17);
        });
        // element (3, 17) of rank 0's rows: d · q of the file, rounded to bf16
        var info = ((GgufCheckpoint)folder.Checkpoint).Info("model.embed_tokens.weight")!;
        var block = ((GgufCheckpoint)folder.Checkpoint).File.Bytes(info, (3L * 128 / 32) * 34, 34);
        float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(block));
        Assert.Equal(Bf16.ToF32(Bf16.FromF32(d * (sbyte)block[2 + 17])), rows[0]);
        var ids = PromptIds("fortune-llama");
        var (_, refPath, _) = Models.ModelFixtureTests.Fixture("fortune-llama");
        using var reference = new SafetensorsFile(refPath);
        float diff = MaxDiff(Logits(folder.Path, 1, ids)[0], reference.ReadF32("prompt0.logits"));
        Assert.True(diff < 0.5f, $"Q8_0 everywhere: max abs error {diff} against transformers");
    }

    [Fact]
    public void The_vocabulary_from_the_metadata_encodes_and_decodes_as_tokenizer_json_does()
    {
        using var gguf = ModelFolder.Open(Gguf("fortune-llama", GgufConverter.Q4_0, GgufConverter.BF16));
        using var st = ModelFolder.Open(Paths.FortuneLlama);
        var text = File.ReadAllText(Paths.EvalText)[..20000] + " <|endoftext|> naïve café 日本語 \t\n  x";
        var a = gguf.Tokenizer!.Encode(text, addSpecialTokens: true);
        var b = st.Tokenizer!.Encode(text, addSpecialTokens: true);
        Assert.Equal(b, a);
        Assert.Equal(st.Tokenizer.Decode(b), gguf.Tokenizer.Decode(a));
        Assert.True(gguf.Tokenizer.IsSpecial(50256));
        Assert.Equal(st.Config.EosTokenIds, gguf.Config.EosTokenIds);
        Assert.Equal(st.Config.BosTokenId, gguf.Config.BosTokenId);
        Assert.Equal(st.Config.RmsNormEps, gguf.Config.RmsNormEps, 1e-12); // an f32 in the file
        Assert.Equal(st.Config with { RmsNormEps = gguf.Config.RmsNormEps, Rope = gguf.Config.Rope, Layers = gguf.Config.Layers, EosTokenIds = gguf.Config.EosTokenIds }, gguf.Config);
        Assert.Equal(st.Config.Layers.Select(l => l.SlidingWindow), gguf.Config.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(st.Config.Rope with { Bf16InverseFrequencies = false }, gguf.Config.Rope);
    }

    [Fact]
    public void Each_rank_reads_only_its_own_rows_of_a_gguf_file()
    {
        using var folder = ModelFolder.Open(Gguf("fortune-llama", GgufConverter.BF16));
        var plans = Enumerable.Range(0, 3).Select(r => ShardPlan.For(folder.Config, 3, r)).ToArray();
        var loader = new WeightLoader(folder.Checkpoint);
        var whole = loader.LoadRows("model.layers.1.mlp.gate_proj.weight", 0, 384, 384, 128);
        foreach (var p in plans)
        {
            var mine = loader.LoadRows("model.layers.1.mlp.gate_proj.weight", p.MlpStart, p.MlpCount, 384, 128);
            for (int r = 0; r < p.MlpCount; r++) Assert.Equal(whole.Get(p.MlpStart + r, 9), mine.Get(r, 9));
            var cols = loader.LoadColumns("model.layers.1.mlp.down_proj.weight", p.MlpStart, p.MlpCount, 128, 384);
            var all = loader.LoadColumns("model.layers.1.mlp.down_proj.weight", 0, 384, 128, 384);
            for (int c = 0; c < p.MlpCount; c++) Assert.Equal(all.Get(11, p.MlpStart + c), cols.Get(11, c));
        }
    }
}
