using System.Text;
using TpLlm.Parallel;
using TpLlm.Sampling.Json;
using TpLlm.Tokenization;

namespace TpLlm.Tests.Sampling.Json;

public class JsonConstraintTests
{
    private static readonly Lazy<HfTokenizer> Gpt2 = new(() => HfTokenizer.Load(Paths.FortuneLlama));
    private static readonly Lazy<HfTokenizer> Llama2 = new(() => HfTokenizer.Load(Path.Combine(Paths.Root, "tests", "fixtures", "llama2-tokenizer")));

    public static TheoryData<string> Tokenizers => new() { "gpt2", "llama2" };

    private static HfTokenizer Tokenizer(string name) => name == "gpt2" ? Gpt2.Value : Llama2.Value;

    // the ids a rank leaves unmasked in one row, as vocabulary ids
    private static HashSet<int> Unmasked(JsonConstraint c, int slot, VocabPartition part, int rank)
    {
        var row = new float[part.ShardSize];
        c.Apply(row, [slot], 1);
        var ids = Enumerable.Range(0, part.RealRows(rank)).Where(k => !float.IsNegativeInfinity(row[k])).Select(k => part.Start(rank) + k).ToHashSet();
        c.Restore(row);
        Assert.All(row, v => Assert.Equal(0f, v));
        return ids;
    }

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void The_ranks_together_allow_exactly_the_tokens_that_continue_the_object(string name)
    {
        var tok = Tokenizer(name);
        var table = tok.TextTokenBytes;
        int V = tok.VocabSize, eos = name == "gpt2" ? 50256 : 2;
        var rng = new Random(3);
        foreach (int tp in new[] { 1, 2, 3 })
        {
            var part = new VocabPartition(V, tp, 64);
            var ranks = Enumerable.Range(0, tp).Select(r => new JsonConstraint(2, part.Start(r), part.RealRows(r), part.ShardSize, table, [eos])).ToArray();
            for (int n = 0; n < 12; n++)
            {
                // a random prefix of a random object, as the tokenizer splits it
                string text = Encoding.UTF8.GetString(RandomJson.Object(rng, 3));
                string prefix = text[..rng.Next(text.Length + 1)].TrimStart(); // SentencePiece puts a space in front
                if (prefix.Length > 0 && char.IsHighSurrogate(prefix[^1])) prefix = prefix[..^1];
                var ids = tok.Encode(prefix);
                var state = new JsonState();
                Assert.True(state.Feed(ids.SelectMany(id => table[id]!).ToArray()), prefix);
                foreach (var c in ranks)
                {
                    c.Begin(1, json: true);
                    foreach (int id in ids) c.Record(1, id);
                }
                var allowed = new HashSet<int>();
                for (int r = 0; r < tp; r++) allowed.UnionWith(Unmasked(ranks[r], 1, part, r));
                // brute force: every id, its bytes fed to a copy of the prefix's state
                var expected = new HashSet<int>();
                for (int id = 0; id < V; id++)
                {
                    var copy = state;
                    if (table[id] is { Length: > 0 } b && id != eos && copy.Feed(b)) expected.Add(id);
                }
                if (state.IsComplete) expected = [eos];
                Assert.True(expected.SetEquals(allowed), $"{name}, tp {tp}, after '{prefix}': {expected.Count} expected, {allowed.Count} allowed");
                Assert.NotEmpty(allowed);
            }
        }
    }

    [Fact]
    public void The_sequence_ends_only_once_the_object_is_complete_and_long_enough()
    {
        var tok = Gpt2.Value;
        var table = tok.TextTokenBytes;
        const int eos = 50256, stop = 13; // 13 is "." in GPT-2: a text token used as a stop id
        var c = new JsonConstraint(4, 0, tok.VocabSize, tok.VocabSize, table, [eos]);
        var part = new VocabPartition(tok.VocabSize, 1);
        bool IsSpace(int id) => table[id] is { Length: > 0 } b && b.All(x => x is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r');
        void Feed(int slot, string text) { foreach (int id in tok.Encode(text)) c.Record(slot, id); }

        c.Begin(0, json: true, stopTokenIds: [stop]);
        var open = Unmasked(c, 0, part, 0);
        Assert.DoesNotContain(eos, open);
        Assert.DoesNotContain(stop, open);
        Assert.Contains(tok.Encode("{")[0], open);
        Feed(0, "{\"a\": 1}");
        Assert.True(c.IsComplete(0));
        Assert.Equal([stop, eos], Unmasked(c, 0, part, 0).Order());

        c.Begin(1, json: true, minTokens: 10); // complete too early: only whitespace until the minimum
        Feed(1, "{}");
        var padding = Unmasked(c, 1, part, 0);
        Assert.NotEmpty(padding);
        Assert.All(padding, id => Assert.True(IsSpace(id), $"id {id}"));
        for (int i = 2; i < 10; i++) c.Record(1, tok.Encode(" ")[0]);
        Assert.Equal([eos], Unmasked(c, 1, part, 0));

        c.Begin(2, json: true, ignoreEos: true); // nothing can end it: whitespace until max tokens
        Feed(2, "{}");
        Assert.All(Unmasked(c, 2, part, 0), id => Assert.True(IsSpace(id)));
        c.Begin(2, json: true, ignoreEos: true, stopTokenIds: [stop]); // the slot's last sequence is forgotten
        Assert.False(c.IsComplete(2));
        Feed(2, "{}");
        Assert.Equal([stop], Unmasked(c, 2, part, 0));

        c.Begin(3, json: false); // not in JSON mode: untouched
        Assert.Equal(tok.VocabSize, Unmasked(c, 3, part, 0).Count);
    }

    [Fact]
    public void Apply_masks_only_json_rows_and_restore_gives_back_the_raw_logits()
    {
        var tok = Gpt2.Value;
        var part = new VocabPartition(tok.VocabSize, 2, 64);
        var c = new JsonConstraint(3, part.Start(1), part.RealRows(1), part.ShardSize, tok.TextTokenBytes, [50256]);
        c.Begin(0, json: true);
        c.Begin(1, json: false);
        c.Begin(2, json: true);
        foreach (int id in tok.Encode("{\"name\": \"")) c.Record(2, id);
        var rng = new Random(1);
        var logits = Enumerable.Range(0, 3 * part.ShardSize).Select(_ => (float)rng.NextDouble()).ToArray();
        var raw = (float[])logits.Clone();
        c.Apply(logits, [2, 1, 0], 3); // rows hold slots 2, 1, 0
        var row0 = logits.AsSpan(0, part.ShardSize).ToArray();
        Assert.Equal(raw.AsSpan(part.ShardSize, part.ShardSize).ToArray(), logits.AsSpan(part.ShardSize, part.ShardSize).ToArray());
        Assert.Contains(row0, float.IsNegativeInfinity);
        Assert.Contains(row0, v => !float.IsNegativeInfinity(v)); // inside a string almost anything goes
        Assert.All(logits.AsSpan(2 * part.ShardSize + part.RealRows(1)).ToArray(), v => Assert.True(float.IsNegativeInfinity(v))); // padding
        c.Restore(logits);
        Assert.Equal(raw, logits);
    }

    [Fact]
    public void A_token_that_cannot_be_parsed_leaves_only_the_end()
    {
        var tok = Gpt2.Value;
        var part = new VocabPartition(tok.VocabSize, 1);
        var c = new JsonConstraint(1, 0, tok.VocabSize, tok.VocabSize, tok.TextTokenBytes, [50256]);
        c.Begin(0, json: true, minTokens: 5);
        c.Record(0, tok.Encode("hello")[0]); // no rank would allow it; a model with no way to spell JSON picks it anyway
        Assert.Equal([50256], Unmasked(c, 0, part, 0));
    }
}
