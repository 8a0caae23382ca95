using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gguf;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Tests.Fuzz;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// GGUF files held to the safetensors standard: lying headers fail with the field and the numbers named, before
/// anything of the size they claim is allocated; seeded mutations of a small valid file load or fail cleanly.
/// </summary>
public class GgufHostileTests
{
    // a two-layer Llama of hidden size 32 with every tensor type TpLlm reads, and an 8-token byte-level vocabulary
    internal static GgufWriter Tiny(Action<GgufWriter>? extra = null)
    {
        var rng = new Random(7);
        byte[] Floats(int n) => [.. Enumerable.Range(0, n).SelectMany(_ => BitConverter.GetBytes((float)(rng.NextDouble() - 0.5)))];
        byte[] Blocks(int rows, int cols, int bytes) => [.. Enumerable.Range(0, rows * cols / 32 * bytes).Select(i => i % bytes == 1 ? (byte)0x20 : (byte)rng.Next(256))];
        var w = new GgufWriter()
            .String("general.architecture", "llama")
            .U32("llama.context_length", 64).U32("llama.embedding_length", 32).U32("llama.block_count", 2)
            .U32("llama.feed_forward_length", 64).U32("llama.attention.head_count", 2).U32("llama.attention.head_count_kv", 1)
            .F32("llama.rope.freq_base", 10000).F32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .String("tokenizer.ggml.model", "gpt2").String("tokenizer.ggml.pre", "gpt-2")
            .Strings("tokenizer.ggml.tokens", ["a", "b", "c", "Ġ", "ab", "Ġa", "<|end|>", "cc"])
            .Ints("tokenizer.ggml.token_type", [1, 1, 1, 1, 1, 1, 3, 1])
            .Strings("tokenizer.ggml.merges", ["a b", "Ġ a", "c c"])
            .U32("tokenizer.ggml.eos_token_id", 6);
        w.Tensor("token_embd.weight", GgufConverter.Q8_0, [32, 8], Blocks(8, 32, 34));
        w.Tensor("output_norm.weight", GgufConverter.F32, [32], Floats(32));
        for (int l = 0; l < 2; l++)
        {
            w.Tensor($"blk.{l}.attn_norm.weight", GgufConverter.F32, [32], Floats(32));
            w.Tensor($"blk.{l}.attn_q.weight", GgufConverter.Q4_0, [32, 32], Blocks(32, 32, 18));
            w.Tensor($"blk.{l}.attn_k.weight", GgufConverter.Q8_0, [32, 16], Blocks(16, 32, 34));
            w.Tensor($"blk.{l}.attn_v.weight", GgufConverter.BF16, [32, 16], Blocks(16, 32, 64));
            w.Tensor($"blk.{l}.attn_output.weight", GgufConverter.F32, [32, 32], Floats(32 * 32));
            w.Tensor($"blk.{l}.ffn_norm.weight", GgufConverter.F32, [32], Floats(32));
            w.Tensor($"blk.{l}.ffn_gate.weight", GgufConverter.F16, [32, 64], Blocks(64, 32, 64));
            w.Tensor($"blk.{l}.ffn_up.weight", GgufConverter.Q4_0, [32, 64], Blocks(64, 32, 18));
            w.Tensor($"blk.{l}.ffn_down.weight", GgufConverter.Q8_0, [64, 32], Blocks(32, 64, 34));
        }
        extra?.Invoke(w);
        return w;
    }

    private static string Write(GgufWriter w)
    {
        var path = Path.Combine(Paths.TempDir(), "model.gguf");
        w.Write(path);
        return path;
    }

    private static void Run(string path, int tp)
    {
        using var folder = ModelFolder.Open(path);
        var c = folder.Config;
        ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(c, folder.Checkpoint, comm, new ModelOptions { MaxContext = 16, ComputeThreads = 1 });
            var hidden = new float[3 * c.HiddenSize];
            m.Forward([1, 4, 6], [new SequenceChunk(0, 0, 3)], hidden);
            return 0;
        });
    }

    [Fact]
    public void The_tiny_file_runs_at_tp_1_and_2_with_every_type_mixed()
    {
        var path = Write(Tiny());
        Run(path, 1);
        Run(path, 2);
        using var folder = ModelFolder.Open(path);
        Assert.Equal([4, 3, 2], folder.Tokenizer!.Encode("ab c")); // "ab", "Ġ", "c": no merge makes "Ġc"
    }

    public static IEnumerable<object[]> Lies()
    {
        // header fields patched after a valid start: (what, bytes to write at an offset, expected message part)
        yield return ["tensor count", 8, BitConverter.GetBytes(1UL << 60), "tensor count 1152921504606846976 cannot fit"];
        yield return ["metadata count", 16, BitConverter.GetBytes(1UL << 58), "metadata count 288230376151711744 cannot fit"];
        yield return ["version", 4, BitConverter.GetBytes(1u), "GGUF version 1 is not supported"];
        yield return ["key length", 24, BitConverter.GetBytes(1UL << 62), "string length 4611686018427387904 runs past the end"];
    }

    [Theory]
    [MemberData(nameof(Lies))]
    public void Lying_header_fields_fail_with_the_field_named_and_nothing_large_allocated(string what, int offset, byte[] patch, string message)
    {
        var path = Write(Tiny());
        var bytes = File.ReadAllBytes(path);
        patch.CopyTo(bytes, offset);
        File.WriteAllBytes(path, bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointException>(() => new GgufFile(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, $"{what}: allocated {GC.GetAllocatedBytesForCurrentThread() - before} bytes");
        Assert.Contains(message, e.Message);
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void Lying_array_counts_dimensions_offsets_and_types_are_named()
    {
        Assert.Contains("claims 1099511627776 elements", Fails(w => w.Add("x.array", GgufWriter.TypeArray, (GgufWriter.TypeU32, (object)new uint[] { 1 })), "x.array", 1UL << 40));
        Assert.Contains("ggml type 99, which ggml does not define",
            Assert.Throws<CheckpointException>(() => new GgufFile(Write(Tiny(w => w.Tensor("blk.0.extra.weight", 99, [32], new byte[128]))))).Message);
        Assert.Contains("rows of 33 elements, not a multiple of its block of 32",
            Assert.Throws<CheckpointException>(() => new GgufFile(Write(Tiny(w => w.Tensor("odd", GgufConverter.Q8_0, [33, 1], new byte[34]))))).Message);
        Assert.Contains("runs past the end of the data section",
            Assert.Throws<CheckpointException>(() => new GgufFile(Write(Tiny(w => w.Tensor("huge", GgufConverter.F32, [1L << 40, 1L << 10], new byte[4]))))).Message);
    }

    // the file with the array's element count patched to a lie
    private static string Fails(Action<GgufWriter> extra, string key, ulong count)
    {
        var path = Write(Tiny(extra));
        var bytes = File.ReadAllBytes(path);
        var keyBytes = System.Text.Encoding.UTF8.GetBytes(key);
        int at = bytes.AsSpan().IndexOf(keyBytes) + keyBytes.Length + 4 + 4; // key, value type, element type
        BitConverter.GetBytes(count).CopyTo(bytes, at);
        File.WriteAllBytes(path, bytes);
        return Assert.Throws<CheckpointException>(() => new GgufFile(path)).Message;
    }

    [Fact]
    public void A_tensor_of_a_type_TpLlm_does_not_read_is_named_with_its_type()
    {
        var path = Write(Tiny(w => w.Tensor("output.weight", 11 /* Q3_K */, [256, 8], new byte[8 * 110])));
        // (a Q3_K row is 256 wide: the type is named before the shape is compared)
        var e = Assert.ThrowsAny<TpLlmException>(() => Run(path, 1));
        Assert.Contains("tensor 'output.weight' is Q3_K", e.Message);
        Assert.Contains("F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K", e.Message);
    }

    [Fact]
    public void A_qwen2_file_reads_its_qkv_biases_in_order_and_runs()
    {
        var rng = new Random(3);
        float[] q = [.. Enumerable.Range(0, 32).Select(_ => (float)rng.NextDouble())];
        var bytes = File.ReadAllBytes(Write(Tiny(w =>
        {
            for (int l = 0; l < 2; l++)
            {
                w.Tensor($"blk.{l}.attn_q.bias", GgufConverter.F32, [32], [.. q.SelectMany(BitConverter.GetBytes)]);
                w.Tensor($"blk.{l}.attn_k.bias", GgufConverter.F32, [16], new byte[64]);
                w.Tensor($"blk.{l}.attn_v.bias", GgufConverter.F32, [16], new byte[64]);
            }
        })));
        // the architecture and its keys: llama.* → qwen2.*
        var text = System.Text.Encoding.Latin1.GetString(bytes).Replace("llama", "qwen2");
        var path = Path.Combine(Paths.TempDir(), "q.gguf");
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes(text));
        using (var folder = ModelFolder.Open(path))
        {
            Assert.Equal("qwen2", folder.Config.ModelType);
            Assert.True(folder.Config.AttentionBias);
            Assert.Equal(q, new WeightLoader(folder.Checkpoint).LoadVector("model.layers.1.self_attn.q_proj.bias", 32)); // not permuted: only llama's are
        }
        Run(path, 2);
    }

    [Fact]
    public void An_architecture_TpLlm_does_not_read_is_named()
    {
        var path = Write(Tiny(w => w.String("general.architecture", "mamba")));
        var e = Assert.Throws<CheckpointException>(() => ModelFolder.Open(path));
        Assert.Contains("metadata key 'general.architecture' appears twice", e.Message);
        var bytes = File.ReadAllBytes(Write(Tiny()));
        var at = bytes.AsSpan().IndexOf("llama"u8);
        "gptj1"u8.CopyTo(bytes.AsSpan(at));
        var other = Path.Combine(Paths.TempDir(), "m.gguf");
        File.WriteAllBytes(other, bytes);
        Assert.Contains("GGUF architecture 'gptj1' is not supported (supported: llama, qwen2, qwen3)", Assert.Throws<CheckpointException>(() => ModelFolder.Open(other)).Message);
    }

    [Fact]
    public void Mutated_files_load_or_fail_cleanly()
    {
        var valid = File.ReadAllBytes(Write(Tiny()));
        var dir = Paths.TempDir();
        var path = Path.Combine(dir, "m.gguf");
        int n = int.TryParse(Environment.GetEnvironmentVariable("TPLLM_FUZZ_CASES"), out int c) && c > 0 ? c : 1500, loaded = 0;
        for (int i = 0; i < n; i++)
        {
            var m = new Mutator(i);
            // mutations land in the header (where the lies are) more often than in the tensor data
            var bytes = i % 3 == 0 ? m.MutateBytes(valid) : [.. m.MutateBytes(valid[..2048]), .. valid[2048..]];
            File.WriteAllBytes(path, bytes);
            try
            {
                if (GgufFile.IsGguf(path)) Run(path, 1 + i % 2);
                else using (ModelFolder.Open(path)) { }
                loaded++;
            }
            catch (TpLlmException)
            {
            }
            catch (Exception e)
            {
                Assert.Fail($"gguf case {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Directory.Delete(dir, true);
        Assert.InRange(loaded, 1, n - 1);
    }
}
