using System.Text;
using TpLlm.Models;

namespace TpLlm.Tests.Models;

public class ModelConfigTests
{
    private static ModelConfig Parse(string json) => ModelConfig.Parse("config.json", Encoding.UTF8.GetBytes(json));

    private const string Base = "\"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 100";

    [Fact]
    public void Both_rope_spellings_give_the_same_parameters()
    {
        var v5 = Parse("{\"model_type\": \"llama\", " + Base + ", \"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}}");
        var old = Parse("{\"model_type\": \"llama\", " + Base + ", \"rope_theta\": 500000.0, \"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}}");
        Assert.Equal(v5.Rope, old.Rope);
        Assert.Equal("llama3", old.Rope.Type);
        Assert.Equal(v5.Rope.InverseFrequencies(16), old.Rope.InverseFrequencies(16));
        var plain = Parse("{\"model_type\": \"mistral\", " + Base + ", \"rope_theta\": 1000000.0, \"rope_scaling\": null}");
        Assert.Equal(new RopeParameters(1000000.0, "default"), plain.Rope);
    }

    [Fact]
    public void Head_dim_is_explicit_or_derived_and_qwen2_has_qkv_bias()
    {
        Assert.Equal(16, Parse("{\"model_type\": \"llama\", " + Base + "}").HeadDim);
        Assert.Equal(32, Parse("{\"model_type\": \"llama\", " + Base + ", \"head_dim\": 32}").HeadDim);
        var q = Parse("{\"model_type\": \"qwen2\", " + Base + ", \"tie_word_embeddings\": true}");
        Assert.True(q.AttentionBias);
        Assert.True(q.TieWordEmbeddings);
        Assert.False(Parse("{\"model_type\": \"llama\", " + Base + "}").AttentionBias);
        Assert.Equal([1, 2], Parse("{\"model_type\": \"llama\", " + Base + ", \"eos_token_id\": [1, 2]}").EosTokenIds);
    }

    [Theory]
    [InlineData("\"model_type\": \"gpt2\", " + Base, "model_type 'gpt2' is not supported (supported: llama, mistral, qwen2, qwen3, gemma3_text)")]
    [InlineData("\"model_type\": \"gemma3\", " + Base, "use a config with model_type gemma3_text")]
    [InlineData("\"model_type\": \"qwen3\", " + Base, "'head_dim' is missing; qwen3 configs must give it")]
    [InlineData("\"model_type\": \"gemma3_text\", " + Base + ", \"head_dim\": 16, \"sliding_window\": 8, \"sliding_window_pattern\": 3", "'sliding_window_pattern' is 3, which makes no layer of 2 global")]
    [InlineData("\"model_type\": \"gemma3_text\", " + Base + ", \"head_dim\": 16, \"sliding_window_pattern\": 2", "'sliding_window' is missing")]
    [InlineData("\"model_type\": \"gemma3_text\", " + Base + ", \"head_dim\": 16, \"sliding_window\": 8, \"hidden_activation\": \"gelu\"", "'hidden_activation' is 'gelu'; gemma3_text models are run with gelu_pytorch_tanh or gelu_tanh")]
    [InlineData("\"model_type\": \"gemma3_text\", " + Base + ", \"head_dim\": 16, \"sliding_window\": 8, \"attn_logit_softcapping\": 50.0", "'attn_logit_softcapping' is 50")]
    [InlineData("\"model_type\": \"llama\", " + Base + ", \"layer_types\": [\"full_attention\", \"chunked\"]", "'layer_types'[1] is 'chunked'")]
    [InlineData("\"model_type\": \"llama\", " + Base + ", \"layer_types\": [\"full_attention\"]", "'layer_types' must list 2 layer types")]
    [InlineData("\"model_type\": \"llama\", \"hidden_size\": 64", "'num_attention_heads' is missing")]
    [InlineData("\"model_type\": \"llama\", " + "\"hidden_size\": -64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100", "'hidden_size' is -64, expected an integer in [1, 1048576]")]
    [InlineData("\"model_type\": \"llama\", " + "\"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"vocab_size\": 100", "num_attention_heads 4 is not a multiple of num_key_value_heads 3")]
    [InlineData("\"model_type\": \"llama\", " + Base + ", \"rope_scaling\": {\"type\": \"yarn\"}", "rope_type 'yarn' is not supported")]
    public void Bad_configs_name_the_key_and_the_numbers(string body, string message)
    {
        var e = Assert.Throws<ModelConfigException>(() => Parse("{" + body + "}"));
        Assert.Contains(message, e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void Families_read_their_layer_windows_ropes_and_scales()
    {
        // Gemma 3: layer i global when (i + 1) % pattern == 0; sliding layers on rope_local_base_freq, unscaled
        var g = Parse("{\"model_type\": \"gemma3_text\", \"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 7, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 100, "
            + "\"head_dim\": 32, \"sliding_window\": 16, \"sliding_window_pattern\": 6, \"query_pre_attn_scalar\": 64, \"rope_theta\": 1000000.0, \"rope_local_base_freq\": 10000.0, \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}, \"torch_dtype\": \"bfloat16\"}");
        Assert.Equal([16, 16, 16, 16, 16, 0, 16], g.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(new RopeParameters(1e6, "linear", 8), g.Layers[5].Rope);
        Assert.Equal(new RopeParameters(1e4, "default"), g.Layers[0].Rope);
        Assert.Equal(1 / 8.0, g.AttentionScale, 12);
        Assert.Equal(8f, g.EmbeddingScale);
        Assert.Equal(1.0 / Math.Pow(1e6, 2.0 * 3 / 32) / 8, g.Layers[5].Rope.InverseFrequencies(32)[3], 15); // not rounded to bf16
        // transformers 5 writes Gemma's two ropes under rope_parameters
        var g5 = Parse("{\"model_type\": \"gemma3_text\", \"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100, \"head_dim\": 16, \"sliding_window\": 4, "
            + "\"layer_types\": [\"sliding_attention\", \"full_attention\"], \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 2.0, \"rope_theta\": 1e6}, \"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 1e4}}}");
        Assert.Equal([4, 0], g5.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(new RopeParameters(1e6, "linear", 2), g5.Layers[1].Rope);
        Assert.Equal(1 / 16.0, g5.AttentionScale, 12); // query_pre_attn_scalar 256 when absent
        // Qwen: use_sliding_window with max_window_layers; Mistral: every layer when sliding_window is set; Llama: none
        var q = Parse("{\"model_type\": \"qwen3\", " + Base + ", \"head_dim\": 32, \"use_sliding_window\": true, \"max_window_layers\": 1, \"sliding_window\": 8}");
        Assert.Equal([0, 8], q.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(1 / Math.Sqrt(32), q.AttentionScale, 12);
        Assert.Equal([0, 0], Parse("{\"model_type\": \"qwen3\", " + Base + ", \"head_dim\": 32, \"sliding_window\": 8}").Layers.Select(l => l.SlidingWindow));
        Assert.Equal([5, 5], Parse("{\"model_type\": \"mistral\", " + Base + ", \"sliding_window\": 5}").Layers.Select(l => l.SlidingWindow));
        Assert.False(Parse("{\"model_type\": \"mistral\", " + Base + ", \"sliding_window\": null}").HasSlidingLayers);
        Assert.False(Parse("{\"model_type\": \"llama\", " + Base + "}").HasSlidingLayers);
        Assert.Equal(30.0, Parse("{\"model_type\": \"llama\", " + Base + ", \"final_logit_softcapping\": 30.0}").FinalLogitSoftcap);
    }
}
