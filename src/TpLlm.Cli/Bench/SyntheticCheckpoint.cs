using System.Text;
using System.Text.Json;

namespace TpLlm.Cli.Bench;

/// <summary>
/// Writes a Llama-3.2-1B-shaped checkpoint of random bf16 weights (a fixed seed; about N(0, 0.02), as models are
/// initialised; norms one), so the benchmark exercises the real loader, kernels and quantizers on weights like a
/// real model's — all-zero weights are not what quantizers and attention see — without downloading anything.
/// </summary>
public static class SyntheticCheckpoint
{
    /// <summary>Hidden size.</summary>
    public const int H = 2048;
    /// <summary>Intermediate size.</summary>
    public const int I = 8192;
    /// <summary>Vocabulary.</summary>
    public const int V = 128256;
    /// <summary>Query heads.</summary>
    public const int Heads = 32;
    /// <summary>KV heads.</summary>
    public const int KvHeads = 8;
    /// <summary>Head dimension.</summary>
    public const int D = 64;

    /// <summary>Version of the weights written; a folder written by another version is rewritten.</summary>
    private const string Version = "random-v1";

    /// <summary>Writes the folder unless it already holds a complete checkpoint of this version.</summary>
    public static void Write(string dir, int layers)
    {
        var file = Path.Combine(dir, "model.safetensors");
        var stamp = Path.Combine(dir, "synthetic-version");
        if (File.Exists(Path.Combine(dir, "config.json")) && File.Exists(file) && File.Exists(stamp) && File.ReadAllText(stamp) == Version) return;
        Directory.CreateDirectory(dir);
        var tensors = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", [V, H]), ("model.norm.weight", [H]) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            tensors.AddRange([
                (p + "input_layernorm.weight", [H]), (p + "post_attention_layernorm.weight", [H]),
                (p + "self_attn.q_proj.weight", [Heads * D, H]), (p + "self_attn.k_proj.weight", [KvHeads * D, H]),
                (p + "self_attn.v_proj.weight", [KvHeads * D, H]), (p + "self_attn.o_proj.weight", [H, Heads * D]),
                (p + "mlp.gate_proj.weight", [I, H]), (p + "mlp.up_proj.weight", [I, H]), (p + "mlp.down_proj.weight", [H, I]),
            ]);
        }
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * 2;
            header[name] = new { dtype = "BF16", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var tmp = $"{file}.{Environment.ProcessId}.tmp"; // processes of one job on one host may write it at once: each its own, then one atomic move
        using (var fs = File.Create(tmp))
        {
            fs.Write(BitConverter.GetBytes((ulong)json.Length));
            fs.Write(json);
            var buffer = new byte[1 << 20];
            ulong state = 0x9E3779B97F4A7C15UL;
            foreach (var (name, shape) in tensors)
            {
                long left = shape.Aggregate(1L, (a, b) => a * b) * 2;
                bool norm = shape.Length == 1;
                while (left > 0)
                {
                    int n = (int)Math.Min(left, buffer.Length);
                    Fill(buffer.AsSpan(0, n), norm, ref state);
                    fs.Write(buffer, 0, n);
                    left -= n;
                }
            }
        }
        File.Move(tmp, file, overwrite: true);
        File.WriteAllText(stamp, Version);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model_type"] = "llama", ["hidden_size"] = H, ["intermediate_size"] = I, ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = Heads, ["num_key_value_heads"] = KvHeads, ["head_dim"] = D, ["vocab_size"] = V,
            ["rms_norm_eps"] = 1e-5, ["max_position_embeddings"] = 131072, ["tie_word_embeddings"] = true,
            ["rope_theta"] = 500000.0, ["rope_scaling"] = new Dictionary<string, object>
            {
                ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
            },
            ["torch_dtype"] = "bfloat16", ["bos_token_id"] = 128000, ["eos_token_id"] = 128001,
        }));
    }

    // bf16 values: 1.0 for norm weights, else the sum of two uniforms on (−0.035, 0.035) (a triangle of standard
    // deviation 0.02), from xorshift64*
    private static void Fill(Span<byte> dst, bool norm, ref ulong state)
    {
        var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst);
        if (norm) { values.Fill(0x3F80); return; }
        for (int i = 0; i < values.Length; i++)
        {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
            ulong r = state * 0x2545F4914F6CDD1DUL;
            float u = ((uint)r * (1f / 4294967296f)) + ((uint)(r >> 32) * (1f / 4294967296f)) - 1f; // (−1, 1), triangular
            values[i] = (ushort)(BitConverter.SingleToUInt32Bits(u * 0.035f) >> 16);
        }
    }
}
