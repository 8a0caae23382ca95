using System.Text.Json.Nodes;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Tokenization;

/// <summary>
/// Gemma 3's tokenizer.json as it ships (google/gemma-3-*: BPE over ▁ with byte fallback; a Replace normalizer, a Split
/// pre-tokenizer on " ", no prepended ▁; decoder Replace, ByteFallback, Fuse; &lt;bos&gt; from the template), built
/// small here, since the real 33 MB file is not at hand.
/// </summary>
public class GemmaTokenizerTests
{
    private static HfTokenizer Load()
    {
        var vocab = new JsonObject { ["<pad>"] = 0, ["<eos>"] = 1, ["<bos>"] = 2, ["<unk>"] = 3 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 4 + b;
        string[] pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "hell", "hello", "▁w", "or", "▁wor", "▁world", "ld"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = 260 + i;
        var merges = new JsonArray("h e", "l l", "he ll", "hell o", "▁ w", "o r", "▁w or", "l d", "▁wor ld");
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 0, ["content"] = "<pad>", ["special"] = true },
                new JsonObject { ["id"] = 1, ["content"] = "<eos>", ["special"] = true },
                new JsonObject { ["id"] = 2, ["content"] = "<bos>", ["special"] = true },
                new JsonObject { ["id"] = 3, ["content"] = "<unk>", ["special"] = true }),
            ["normalizer"] = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = " " }, ["behavior"] = "MergedWithPrevious", ["invert"] = false },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<bos>", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject { ["<bos>"] = new JsonObject { ["id"] = "<bos>", ["ids"] = new JsonArray(2), ["tokens"] = new JsonArray("<bos>") } },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = true, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        return HfTokenizer.Load(dir);
    }

    [Fact]
    public void Spaces_become_meta_with_no_prefix_and_unknown_characters_fall_back_to_bytes()
    {
        var tok = Load();
        // no ▁ is prepended (Gemma's sentencepiece model has add_dummy_prefix off); " world" merges whole
        Assert.Equal([271, 275], tok.Encode("hello world"));
        Assert.Equal([2, 271, 275], tok.Encode("hello world", addSpecialTokens: true)); // <bos> from the template
        Assert.Equal("hello world", tok.Decode([271, 275]));
        // 🦙 is not in the vocabulary: its four UTF-8 bytes as <0xXX> tokens, decoded back whole
        var ids = tok.Encode("hello 🦙");
        Assert.Equal([271, 260, 4 + 0xF0, 4 + 0x9F, 4 + 0xA6, 4 + 0x99], ids);
        Assert.Equal("hello 🦙", tok.Decode(ids));
        Assert.True(tok.IsSpecial(2));
        Assert.Equal("hello", tok.Decode([2, 271], skipSpecialTokens: true));
    }
}
