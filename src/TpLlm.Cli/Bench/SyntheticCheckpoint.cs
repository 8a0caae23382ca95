using System.Text;
using System.Text.Json;

namespace TpLlm.Cli.Bench;

/// <summary>
/// Writes a Llama-3.2-1B-shaped checkpoint as a sparse file (every weight zero, norms one), so the
/// benchmark exercises the real loader and kernels without downloading anything.
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

    /// <summary>Writes the folder unless it already holds a complete checkpoint.</summary>
    public static void Write(string dir, int layers)
    {
        var file = Path.Combine(dir, "model.safetensors");
        if (File.Exists(Path.Combine(dir, "config.json")) && File.Exists(file)) return;
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
        var norms = new List<(long Offset, long Count)>();
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * 2;
            header[name] = new { dtype = "BF16", shape, data_offsets = new[] { offset, offset + bytes } };
            if (shape.Length == 1) norms.Add((offset, shape[0]));
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using (var fs = File.Create(file + ".tmp"))
        {
            fs.Write(BitConverter.GetBytes((ulong)json.Length));
            fs.Write(json);
            long dataStart = fs.Position;
            fs.SetLength(dataStart + offset);
            var one = BitConverter.GetBytes((ushort)0x3F80); // bf16 1.0 for the norm weights
            foreach (var (o, n) in norms)
            {
                fs.Position = dataStart + o;
                for (long i = 0; i < n; i++) fs.Write(one);
            }
        }
        File.Move(file + ".tmp", file, overwrite: true);
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
}
