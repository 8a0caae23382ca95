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
    [InlineData("\"model_type\": \"gpt2\", " + Base, "model_type 'gpt2' is not supported (supported: llama, mistral, qwen2)")]
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
}
