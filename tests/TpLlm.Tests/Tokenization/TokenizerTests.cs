using System.Text;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Tokenization;

public class TokenizerTests
{
    private static readonly HfTokenizer Gpt2 = HfTokenizer.Load(Paths.FortuneLlama);

    [Fact]
    public void Encodes_the_reference_prompt_ids()
    {
        Assert.Equal([32, 1110, 1231], Gpt2.Encode("A day without"));
        Assert.Equal([464, 3616, 286, 1204, 318], Gpt2.Encode("The meaning of life is"));
        Assert.Equal(50256, Gpt2.Encode("hi<|endoftext|>")[^1]);
    }

    [Fact]
    public void Streaming_decoding_holds_back_split_multibyte_characters_until_whole()
    {
        const string text = "Ünïcödé → 日本語 and 🎉 emoji";
        var ids = Gpt2.Encode(text);
        var decoder = Gpt2.NewStreamingDecoder();
        var pieces = ids.Select(decoder.Add).ToList();
        pieces.Add(decoder.Flush());
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Contains(pieces, p => p.Length == 0); // some token ended mid-character and was held back
        Assert.Equal(text, Gpt2.Decode(ids));
    }

    [Fact]
    public void Unknown_ids_and_bad_files_raise_clear_errors()
    {
        Assert.Contains("token id 60000 is not in the tokenizer's vocabulary", Assert.Throws<TokenizerException>(() => Gpt2.Decode([60000])).Message);
        var dir = Paths.TempDir();
        Assert.Contains("tokenizer.json: tokenizer file not found", Assert.Throws<TokenizerException>(() => HfTokenizer.Load(dir)).Message);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
            "{\"added_tokens\":[{\"id\":3,\"content\":\"\",\"special\":true}],\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}}");
        Assert.Contains("added token 3 has empty content", Assert.Throws<TokenizerException>(() => HfTokenizer.Load(dir)).Message); // found by the 1M-case fuzz run
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"model\": {\"type\": \"Unigram\"}}");
        Assert.Contains("tokenizer model type 'Unigram' is not supported", Assert.Throws<TokenizerException>(() => HfTokenizer.Load(dir)).Message);
    }
}
