using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;

namespace TpLlm.Tests.Models;

/// <summary>
/// A model with four query heads per KV head (as Llama 3 and Mistral): attention reads each cached key once for the
/// four heads at tp = 1 and 2, for two at tp = 4; prefill and token-by-token decode. All must give the same logits.
/// </summary>
public sealed class GroupedAttentionTests : IDisposable
{
    private const int H = 64, Heads = 8, KvHeads = 2, HeadDim = 8, Inter = 96, Layers = 2, V = 100, T = 21;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tpllm-gqa4-" + Guid.NewGuid().ToString("N"));

    public GroupedAttentionTests()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Path.Combine(_dir, "config.json"), $$"""
            { "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": {{H}}, "intermediate_size": {{Inter}},
              "num_attention_heads": {{Heads}}, "num_key_value_heads": {{KvHeads}}, "head_dim": {{HeadDim}}, "num_hidden_layers": {{Layers}},
              "vocab_size": {{V}}, "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": true, "hidden_act": "silu" }
            """);
        var rng = new Random(7);
        SafetensorsWriter.Entry W(string name, params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var values = Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() - 0.5) * (shape.Length == 1 ? 0.2f : 0.6f) + (shape.Length == 1 ? 1 : 0)).ToArray();
            return new(name, "BF16", shape, SafetensorsWriter.Bf16(values));
        }
        var entries = new List<SafetensorsWriter.Entry> { W("model.embed_tokens.weight", V, H), W("model.norm.weight", H) };
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            entries.AddRange([
                W(p + "input_layernorm.weight", H), W(p + "post_attention_layernorm.weight", H),
                W(p + "self_attn.q_proj.weight", Heads * HeadDim, H), W(p + "self_attn.k_proj.weight", KvHeads * HeadDim, H),
                W(p + "self_attn.v_proj.weight", KvHeads * HeadDim, H), W(p + "self_attn.o_proj.weight", H, Heads * HeadDim),
                W(p + "mlp.gate_proj.weight", Inter, H), W(p + "mlp.up_proj.weight", Inter, H), W(p + "mlp.down_proj.weight", H, Inter)]);
        }
        SafetensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), entries);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private float[] Logits(int tp, int threads, bool tokenByToken)
    {
        var config = ModelConfig.Load(_dir);
        using var ck = Checkpoint.Open(_dir);
        var ids = Enumerable.Range(0, T).Select(i => (i * 37 + 11) % V).ToArray();
        return ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(config, ck, comm, new ModelOptions { ComputeThreads = threads, MaxContext = 64 });
            var hidden = new float[T * H];
            var logits = new float[T * V];
            if (!tokenByToken)
            {
                m.Forward(ids, [new SequenceChunk(0, 0, T)], hidden, allPositions: true);
                m.Head.Forward(hidden, T, logits);
            }
            else
                for (int i = 0; i < T; i++)
                {
                    m.Forward(ids.AsSpan(i, 1), [new SequenceChunk(0, i, 1)], hidden.AsSpan(0, H));
                    m.Head.Forward(hidden.AsSpan(0, H), 1, logits.AsSpan(i * V, V));
                }
            return logits;
        })[0];
    }

    [Fact]
    public void Four_query_heads_per_kv_head_give_the_same_logits_at_every_tp_and_in_decode()
    {
        var reference = Logits(tp: 4, threads: 1, tokenByToken: false); // two query heads per KV head on each rank
        Assert.Contains(reference, v => Math.Abs(v) > 0.1f); // a model that says something
        foreach (var (tp, threads, decode) in new[] { (1, 1, false), (1, 2, false), (2, 1, false), (1, 1, true), (2, 2, true) })
        {
            var logits = Logits(tp, threads, decode);
            float max = 0;
            for (int i = 0; i < logits.Length; i++) max = Math.Max(max, Math.Abs(logits[i] - reference[i]));
            Assert.True(max <= 1e-4f, $"tp={tp} threads={threads} decode={decode}: max abs difference {max} from tp=4");
        }
    }
}
