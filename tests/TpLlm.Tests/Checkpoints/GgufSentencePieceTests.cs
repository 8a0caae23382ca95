using System.Text.Json;
using TpLlm.Checkpoints.Gguf;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// A SentencePiece vocabulary in GGUF metadata (<c>tokenizer.ggml.model = llama</c>: pieces, scores, token types) read
/// as Llama 2's tokenizer: the ids and decoded texts of transformers' reference (the llama2-tokenizer fixture).
/// </summary>
public class GgufSentencePieceTests
{
    private static readonly string Fixture = Path.Combine(Paths.Root, "tests", "fixtures", "llama2-tokenizer");

    // the fixture's pieces as llama.cpp's converter stores a SentencePiece model: each piece with a score — here the
    // rank of the first merge that makes it (what its scores order), single characters and specials below every merge —
    // and its type (2 unknown, 3 control, 6 byte, 1 normal)
    private static string Write()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "tokenizer.json")));
        var model = doc.RootElement.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var tokens = new string[vocab.Count];
        foreach (var (t, id) in vocab) tokens[id] = t;
        var firstMerge = new Dictionary<string, int>();
        int rank = 0;
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            var text = m.ValueKind == JsonValueKind.Array ? m[0].GetString() + m[1].GetString() : m.GetString()!.Remove(m.GetString()!.IndexOf(' ', 1), 1);
            firstMerge.TryAdd(text, rank++);
        }
        var scores = tokens.Select((t, id) => firstMerge.TryGetValue(t, out int r) ? -(float)r : -1e6f - id).ToArray();
        var types = tokens.Select((t, id) => id == 0 ? 2 : id < 3 ? 3 : t.Length == 6 && t.StartsWith("<0x") ? 6 : 1).ToArray();
        var path = Path.Combine(Paths.TempDir(), "llama2-vocab.gguf");
        new GgufWriter().String("general.architecture", "llama").String("tokenizer.ggml.model", "llama")
            .Strings("tokenizer.ggml.tokens", tokens).Floats("tokenizer.ggml.scores", scores).Ints("tokenizer.ggml.token_type", types)
            .U32("tokenizer.ggml.bos_token_id", 1).U32("tokenizer.ggml.eos_token_id", 2).U32("tokenizer.ggml.unknown_token_id", 0)
            .Bool("tokenizer.ggml.add_bos_token", true).Write(path);
        return path;
    }

    [Fact]
    public void The_pieces_and_scores_encode_and_decode_as_transformers_does()
    {
        using var file = new GgufFile(Write());
        var tok = HfTokenizer.Parse(GgufDescription.MetadataName(file), GgufDescription.TokenizerJson(file));
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "reference.json")));
        int n = 0;
        foreach (var c in reference.RootElement.EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var ids = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(ids, tok.Encode(text));
            Assert.Equal(c.GetProperty("decoded").GetString(), tok.Decode(ids));
            n++;
        }
        Assert.True(n >= 10);
        Assert.Equal([1, 15043, 3186], tok.Encode("Hello world", addSpecialTokens: true)); // <s> first
        Assert.True(tok.IsSpecial(2));
        // and as the fixture's own tokenizer.json, over a longer text
        var own = HfTokenizer.Load(Fixture);
        var eval = File.ReadAllText(Paths.EvalText)[..30000];
        Assert.Equal(own.Encode(eval), tok.Encode(eval));
    }
}
