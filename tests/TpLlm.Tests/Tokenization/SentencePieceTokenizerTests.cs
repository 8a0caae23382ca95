using System.Text.Json;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Tokenization;

public class SentencePieceTokenizerTests
{
    private static readonly string Folder = Path.Combine(Paths.Root, "tests", "fixtures", "llama2-tokenizer");
    private static readonly HfTokenizer Llama2 = HfTokenizer.Load(Folder);

    public static IEnumerable<object[]> References()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "reference.json")));
        foreach (var c in doc.RootElement.EnumerateArray())
            yield return [c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(), c.GetProperty("decoded").GetString()!];
    }

    [Theory]
    [MemberData(nameof(References))]
    public void Encodes_and_decodes_as_transformers_does(string text, int[] ids, string decoded)
    {
        Assert.Equal(ids, Llama2.Encode(text));
        Assert.Equal(decoded, Llama2.Decode(ids));
    }

    [Fact]
    public void Special_tokens_go_around_a_text_only_when_asked()
    {
        Assert.Equal([1], Llama2.SpecialTokensAround.Before);
        Assert.Empty(Llama2.SpecialTokensAround.After);
        Assert.Equal([1, 15043, 3186], Llama2.Encode("Hello world", addSpecialTokens: true));
        Assert.Equal([15043, 3186], Llama2.Encode("Hello world"));
    }

    [Fact]
    public void A_stream_keeps_the_space_before_a_continuation_and_holds_back_split_characters()
    {
        // "▁world" after a prompt is " world"; the emoji comes as four <0xXX> byte tokens
        var ids = Llama2.Encode("world 🦙");
        var decoder = Llama2.NewStreamingDecoder();
        var pieces = ids.Select(decoder.Add).ToList();
        pieces.Add(decoder.Flush());
        Assert.Equal(" world 🦙", string.Concat(pieces));
        Assert.Contains(pieces, p => p.Length == 0);
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void A_merge_naming_an_unknown_token_is_a_clear_error()
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
            "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"▁\"}]},\"decoder\":{\"type\":\"ByteFallback\"},"
            + "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}");
        var e = Assert.Throws<TokenizerException>(() => HfTokenizer.Load(dir));
        Assert.Contains("merge 0 'a b' names a token that is not in model.vocab", e.Message);
        Assert.Contains("tokenizer.json", e.Message);
    }
}
