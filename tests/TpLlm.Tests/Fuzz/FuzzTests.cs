using System.Text;
using System.Text.Json;
using TpLlm.Checkpoints;
using TpLlm.Models;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Fuzz;

/// <summary>
/// Seeded mutation fuzzing of every file parser: each case must load or throw a
/// <see cref="TpLlmException"/> — never another exception, a crash, a hang or an out-of-bounds read.
/// CI runs the default count; TPLLM_FUZZ_CASES sets a longer run
/// (e.g. <c>TPLLM_FUZZ_CASES=1000000 dotnet test -c Release --filter FuzzTests</c>).
/// </summary>
public class FuzzTests
{
    private static int Cases(int defaultCount) =>
        int.TryParse(Environment.GetEnvironmentVariable("TPLLM_FUZZ_CASES"), out int n) && n > 0 ? n : defaultCount;

    private static void Expect(Action parse, string what, int i, string input)
    {
        try
        {
            parse();
        }
        catch (TpLlmException)
        {
        }
        catch (Exception e)
        {
            var preview = input.Length > 300 ? input[..300] + "…" : input;
            Assert.Fail($"{what} case {i}: {e.GetType().Name}: {e.Message}\ninput: {preview}");
        }
    }

    private static (string Header, byte[] Data) ValidSafetensors()
    {
        var data = new byte[4 * 6 + 2 * 8 + 8];
        var header = "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[24,40]},"
            + "\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[40,48]}}";
        return (header, data);
    }

    [Fact]
    public void Safetensors_files_load_or_fail_cleanly()
    {
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "model.safetensors");
        var (header, data) = ValidSafetensors();
        var h = Encoding.UTF8.GetBytes(header);
        byte[] valid = [.. BitConverter.GetBytes((ulong)h.Length), .. h, .. data];
        int n = Cases(8000);
        int loaded = 0;
        for (int i = 0; i < n; i++)
        {
            var m = new Mutator(i);
            byte[] bytes;
            if (i % 2 == 0)
            {
                var json = Encoding.UTF8.GetBytes(m.MutateJson(header));
                bytes = [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. data[..m.Next(data.Length + 1)]];
            }
            else bytes = m.MutateBytes(valid);
            File.WriteAllBytes(path, bytes);
            Expect(() =>
            {
                using var f = new SafetensorsFile(path);
                foreach (var t in f.Tensors.Values)
                {
                    // touch every byte the header promises: must stay inside the mapped file
                    var span = f.Bytes(t, 0, checked((int)t.ByteLength));
                    int sum = 0;
                    foreach (var b in span) sum += b;
                    if (t.DType.IsWeightType() && t.Shape.Length == 1) f.ReadF32(t.Name);
                }
                loaded++;
            }, "safetensors", i, Encoding.UTF8.GetString(bytes));
        }
        Directory.Delete(dir, true);
        Assert.InRange(loaded, 1, n - 1); // mutations both kept some files valid and broke others
    }

    [Fact]
    public void Sharded_indexes_load_or_fail_cleanly()
    {
        var dir = Paths.TempDir();
        var (header, data) = ValidSafetensors();
        var h = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(Path.Combine(dir, "model-00001-of-00001.safetensors"), [.. BitConverter.GetBytes((ulong)h.Length), .. h, .. data]);
        var index = "{\"metadata\":{\"total_size\":48},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\",\"b\":\"model-00001-of-00001.safetensors\",\"c\":\"model-00001-of-00001.safetensors\"}}";
        int n = Cases(3000);
        for (int i = 0; i < n; i++)
        {
            var text = new Mutator(i).MutateJson(index);
            File.WriteAllText(Path.Combine(dir, Checkpoint.IndexFileName), text);
            Expect(() =>
            {
                using var ck = Checkpoint.Open(dir);
                foreach (var name in ck.TensorNames.ToArray()) ck.Get(name);
            }, "index", i, text);
        }
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Configs_and_generation_configs_load_or_fail_cleanly()
    {
        var dir = Paths.TempDir();
        var seeds = new[] { File.ReadAllText(Path.Combine(Paths.Llama3Mini, "config.json")), File.ReadAllText(Path.Combine(Paths.FortuneLlama, "config.json")) };
        var gen = File.ReadAllText(Path.Combine(Paths.FortuneLlama, "generation_config.json"));
        int n = Cases(6000), ok = 0;
        for (int i = 0; i < n; i++)
        {
            var m = new Mutator(i);
            var config = m.MutateJson(seeds[i % 2]);
            File.WriteAllText(Path.Combine(dir, "config.json"), config);
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), i % 3 == 0 ? m.MutateJson(gen) : gen);
            Expect(() =>
            {
                var c = ModelConfig.Load(dir);
                for (int tp = 1; tp <= Math.Min(c.NumHeads, 4); tp++) ShardPlan.For(c, tp, tp - 1);
                _ = c.Rope.InverseFrequencies(c.HeadDim);
                ok++;
            }, "config", i, config);
        }
        Directory.Delete(dir, true);
        Assert.InRange(ok, 1, n - 1);
    }

    [Fact]
    public void Tokenizers_load_or_fail_cleanly()
    {
        var vocab = new Dictionary<string, int>();
        foreach (var c in "abcdefghijklmnopqrstuvwxyzĠ") vocab[c.ToString()] = vocab.Count;
        foreach (var t in new[] { "Ġt", "he", "Ġthe", "in", "an" }) vocab[t] = vocab.Count;
        var seed = JsonSerializer.Serialize(new
        {
            added_tokens = new[] { new { id = vocab.Count, content = "<|endoftext|>", special = true } },
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges = new[] { "Ġ t", "h e", "Ġt he", "i n", "a n" } },
        });
        FuzzTokenizer(seed, "the tin can<|endoftext|>", "tokenizer");
    }

    // mutates a tokenizer.json seed; each mutant loads, encodes (with special tokens) and decodes, or fails cleanly
    private static void FuzzTokenizer(string seed, string sample, string what)
    {
        var dir = Paths.TempDir();
        int n = Cases(3000), ok = 0;
        for (int i = 0; i < n; i++)
        {
            var text = new Mutator(i).MutateJson(seed);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), text);
            Expect(() =>
            {
                var tok = HfTokenizer.Load(dir);
                tok.Decode(tok.Encode(sample, addSpecialTokens: true));
                ok++;
            }, what, i, text);
        }
        Directory.Delete(dir, true);
        Assert.InRange(ok, 1, n - 1);
    }

    [Fact]
    public void SentencePiece_tokenizers_load_or_fail_cleanly()
    {
        var vocab = new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2, ["<0xC3>"] = 3, ["<0xBC>"] = 4 };
        foreach (var c in "▁abcehintu") vocab[c.ToString()] = vocab.Count;
        foreach (var t in new[] { "▁t", "he", "▁the", "in", "an", "▁tin" }) vocab[t] = vocab.Count;
        var seed = JsonSerializer.Serialize(new
        {
            added_tokens = new[] { new { id = 0, content = "<unk>", special = true }, new { id = 1, content = "<s>", special = true }, new { id = 2, content = "</s>", special = true } },
            normalizer = new { type = "Sequence", normalizers = new object[] { new { type = "Prepend", prepend = "▁" }, new { type = "Replace", pattern = new { String = " " }, content = "▁" } } },
            post_processor = new { type = "TemplateProcessing", single = new object[] { new { SpecialToken = new { id = "<s>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                special_tokens = new Dictionary<string, object> { ["<s>"] = new { id = "<s>", ids = new[] { 1 }, tokens = new[] { "<s>" } } } },
            decoder = new { type = "Sequence", decoders = new object[] { new { type = "Replace", pattern = new { String = "▁" }, content = " " }, new { type = "ByteFallback" }, new { type = "Fuse" }, new { type = "Strip", content = " ", start = 1, stop = 0 } } },
            model = new { type = "BPE", byte_fallback = true, fuse_unk = true, unk_token = "<unk>", vocab, merges = new[] { "▁ t", "h e", "▁t he", "i n", "a n", "▁t in" } },
        });
        FuzzTokenizer(seed, "the tin can</s> ü€", "sentencepiece tokenizer");
    }

    [Fact]
    public void Chat_templates_render_or_fail_cleanly()
    {
        var seeds = new[] { Chat.ModelTemplates.Llama3, Chat.ModelTemplates.Llama31, Chat.ModelTemplates.Qwen25, Chat.ModelTemplates.MistralV3, Chat.ModelTemplates.MistralV01 };
        TpLlm.Chat.ChatTurn[] conversation = [new("system", "s"), new("user", "Hello"), new("assistant", "Hi"), new("user", "More")];
        int n = Cases(4000), ok = 0;
        for (int i = 0; i < n; i++)
        {
            var m = new Mutator(i);
            var template = m.MutateJson(seeds[i % seeds.Length]); // the text mutations (truncate, delete, duplicate, swap tokens) suit any text
            Expect(() =>
            {
                TpLlm.Chat.ChatTemplate.Parse(template, "fuzz", "<s>", "</s>").Render(conversation);
                ok++;
            }, "chat template", i, template);
        }
        Assert.InRange(ok, 1, n - 1);
    }
}
