using System.Runtime.InteropServices;
using System.Text.Json;
using TpLlm.Checkpoints;
using TpLlm.Tensors.Formats.Blocks;
using TpLlm.Tensors.Formats.Int8;
using TpLlm.Tensors.Formats.Q4;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// Turns a Llama model folder of the fixtures into a GGUF file as llama.cpp's <c>convert_hf_to_gguf.py</c> does:
/// llama.* metadata, the GPT-2 vocabulary as tokenizer.ggml.*, tensors renamed (blk.N.attn_q…), the q and k rows of
/// each head reordered for interleaved rotary pairs, norms in F32, a Llama 3 RoPE scaling as <c>rope_freqs.weight</c>.
/// Q8_0 and Q4_0 blocks are TpLlm's own quantizer's (so a file and <c>--quantize</c> hold the same blocks), laid out
/// as ggml lays them.
/// </summary>
internal static class GgufConverter
{
    public const uint F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30;

    /// <param name="folder">The model folder.</param>
    /// <param name="path">The GGUF file to write.</param>
    /// <param name="weights">ggml type of the decoder's matrices.</param>
    /// <param name="vocabMatrices">ggml type of token_embd and output (default: <paramref name="weights"/>).</param>
    /// <param name="change">Last changes to the writer (extra or lying metadata).</param>
    /// <param name="tokenizerFolder">Where tokenizer.json is (default: <paramref name="folder"/>; llama3-mini has none and shares fortune-llama's GPT-2 vocabulary).</param>
    public static string Convert(string folder, string path, uint weights, uint? vocabMatrices = null, Action<GgufWriter>? change = null, string? tokenizerFolder = null)
    {
        using var cfgDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var c = cfgDoc.RootElement;
        int hidden = c.GetProperty("hidden_size").GetInt32(), heads = c.GetProperty("num_attention_heads").GetInt32();
        int kvHeads = c.GetProperty("num_key_value_heads").GetInt32(), layers = c.GetProperty("num_hidden_layers").GetInt32();
        int headDim = c.TryGetProperty("head_dim", out var hd) ? hd.GetInt32() : hidden / heads;
        var rope = c.TryGetProperty("rope_parameters", out var rp) ? rp : c; // transformers 5, or rope_theta at the top (4.x)
        string arch = c.GetProperty("model_type").GetString() == "qwen3" ? "qwen3" : "llama";
        var w = new GgufWriter()
            .String("general.architecture", arch)
            .String("general.name", Path.GetFileName(folder))
            .U32("general.alignment", 32)
            .U32($"{arch}.context_length", (uint)c.GetProperty("max_position_embeddings").GetInt32())
            .U32($"{arch}.embedding_length", (uint)hidden)
            .U32($"{arch}.block_count", (uint)layers)
            .U32($"{arch}.feed_forward_length", (uint)c.GetProperty("intermediate_size").GetInt32())
            .U32($"{arch}.attention.head_count", (uint)heads)
            .U32($"{arch}.attention.head_count_kv", (uint)kvHeads)
            .U32($"{arch}.attention.key_length", (uint)headDim)
            .U32($"{arch}.attention.value_length", (uint)headDim)
            .U32($"{arch}.rope.dimension_count", (uint)headDim)
            .F32($"{arch}.rope.freq_base", (float)rope.GetProperty("rope_theta").GetDouble())
            .F32($"{arch}.attention.layer_norm_rms_epsilon", (float)c.GetProperty("rms_norm_eps").GetDouble())
            .U32($"{arch}.vocab_size", (uint)c.GetProperty("vocab_size").GetInt32());
        if (File.Exists(Path.Combine(tokenizerFolder ?? folder, "tokenizer.json"))) AddVocabulary(w, tokenizerFolder ?? folder, c);

        using var st = OpenSafetensors(folder);
        void Matrix(string hf, string gguf, uint type, int permuteHeads = 0)
        {
            var (file, info) = st.Get(hf);
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var values = file.ReadF32(hf);
            if (permuteHeads > 0) values = Permute(values, rows, cols, permuteHeads);
            byte[] data = type switch
            {
                F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
                F16 => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
                BF16 => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(), // bf16 sources: exact
                Q8_0 => Blocks<Int8Block>(values, rows, cols, 34, (lv, b) => { for (int j = 0; j < 32; j++) b[2 + j] = (byte)lv[j]; }),
                Q4_0 => Blocks<Q4Block>(values, rows, cols, 18, (lv, b) => { for (int j = 0; j < 16; j++) b[2 + j] = (byte)((lv[j] + 8) | ((lv[j + 16] + 8) << 4)); }),
                _ => throw new ArgumentException($"type {type}"),
            };
            w.Tensor(gguf, type, [cols, rows], data);
        }
        void Vector(string hf, string gguf)
        {
            var (file, info) = st.Get(hf);
            w.Tensor(gguf, F32, [info.Shape[0]], MemoryMarshal.AsBytes(file.ReadF32(hf).AsSpan()).ToArray());
        }

        uint vocabType = vocabMatrices ?? weights;
        Matrix("model.embed_tokens.weight", "token_embd.weight", vocabType);
        if (st.Contains("lm_head.weight") && !c.GetProperty("tie_word_embeddings").GetBoolean())
            Matrix("lm_head.weight", "output.weight", vocabType);
        Vector("model.norm.weight", "output_norm.weight");
        if (rope.TryGetProperty("rope_type", out var rt) && rt.GetString() == "llama3")
            w.Tensor("rope_freqs.weight", F32, [headDim / 2], MemoryMarshal.AsBytes(Llama3Factors(rope, headDim).AsSpan()).ToArray());
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.", g = $"blk.{l}.";
            Vector(p + "input_layernorm.weight", g + "attn_norm.weight");
            Matrix(p + "self_attn.q_proj.weight", g + "attn_q.weight", weights, arch == "llama" ? heads : 0); // only llama's are permuted
            Matrix(p + "self_attn.k_proj.weight", g + "attn_k.weight", weights, arch == "llama" ? kvHeads : 0);
            if (arch == "qwen3")
            {
                Vector(p + "self_attn.q_norm.weight", g + "attn_q_norm.weight");
                Vector(p + "self_attn.k_norm.weight", g + "attn_k_norm.weight");
            }
            Matrix(p + "self_attn.v_proj.weight", g + "attn_v.weight", weights);
            Matrix(p + "self_attn.o_proj.weight", g + "attn_output.weight", weights);
            Vector(p + "post_attention_layernorm.weight", g + "ffn_norm.weight");
            Matrix(p + "mlp.gate_proj.weight", g + "ffn_gate.weight", weights);
            Matrix(p + "mlp.up_proj.weight", g + "ffn_up.weight", weights);
            Matrix(p + "mlp.down_proj.weight", g + "ffn_down.weight", weights);
        }
        change?.Invoke(w);
        w.Write(path);
        return path;
    }

    private static Checkpoint OpenSafetensors(string folder) => Checkpoint.Open(folder);

    // convert_hf_to_gguf's LlamaModel.permute: reshape(heads, 2, D/2, cols).swapaxes(1, 2)
    private static float[] Permute(float[] w, int rows, int cols, int heads)
    {
        int d = rows / heads, half = d / 2;
        var o = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < half; j++)
                    Array.Copy(w, (long)(h * d + i * half + j) * cols, o, (long)(h * d + 2 * j + i) * cols, cols);
        return o;
    }

    // convert_hf_to_gguf's LlamaModel.generate_extra_tensors for rope_type llama3
    private static float[] Llama3Factors(JsonElement rope, int dim)
    {
        double theta = rope.GetProperty("rope_theta").GetDouble(), factor = rope.GetProperty("factor").GetDouble();
        double low = rope.GetProperty("low_freq_factor").GetDouble(), high = rope.GetProperty("high_freq_factor").GetDouble();
        double old = rope.GetProperty("original_max_position_embeddings").GetDouble();
        double lowWavelen = old / low, highWavelen = old / high;
        var f = new float[dim / 2];
        for (int i = 0; i < f.Length; i++)
        {
            double freq = 1.0 / Math.Pow(theta, 2.0 * i / dim), wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) f[i] = 1;
            else if (wavelen > lowWavelen) f[i] = (float)factor;
            else
            {
                double smooth = (old / wavelen - low) / (high - low);
                f[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }
        return f;
    }

    private static byte[] Blocks<TQ>(float[] values, int rows, int cols, int blockBytes, Action<sbyte[], byte[]> pack) where TQ : struct, IQuantBlock
    {
        if (cols % 32 != 0) throw new ArgumentException($"{cols} columns are not whole blocks");
        var data = new byte[(long)rows * cols / 32 * blockBytes];
        var levels = new sbyte[32];
        var block = new byte[blockBytes];
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < cols / 32; g++)
            {
                ushort d = TQ.Quantize(values.AsSpan(r * cols + g * 32, 32), levels);
                Array.Clear(block);
                BitConverter.TryWriteBytes(block, d);
                pack(levels, block);
                block.CopyTo(data, ((long)r * cols / 32 + g) * blockBytes);
            }
        return data;
    }

    // the GPT-2 byte-level vocabulary as llama.cpp's converter stores it
    private static void AddVocabulary(GgufWriter w, string folder, JsonElement config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")));
        var model = doc.RootElement.GetProperty("model");
        var byId = new SortedDictionary<int, (string Token, int Type)>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = (p.Name, 1);
        foreach (var a in doc.RootElement.GetProperty("added_tokens").EnumerateArray())
            byId[a.GetProperty("id").GetInt32()] = (a.GetProperty("content").GetString()!, a.GetProperty("special").GetBoolean() ? 3 : 4);
        int n = byId.Keys.Max() + 1;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++) (tokens[i], types[i]) = byId.TryGetValue(i, out var t) ? t : ($"[PAD{i}]", 5);
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!).ToArray();
        w.String("tokenizer.ggml.model", "gpt2").String("tokenizer.ggml.pre", "gpt-2")
            .Strings("tokenizer.ggml.tokens", tokens).Ints("tokenizer.ggml.token_type", types).Strings("tokenizer.ggml.merges", merges)
            .U32("tokenizer.ggml.bos_token_id", (uint)config.GetProperty("bos_token_id").GetInt32())
            .U32("tokenizer.ggml.eos_token_id", (uint)config.GetProperty("eos_token_id").GetInt32())
            .Bool("tokenizer.ggml.add_bos_token", false);
    }
}
