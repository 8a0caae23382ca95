using System.Text;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Sampling.Json;

namespace TpLlm.Tests.Sampling.Json;

public class JsonModeGenerationTests
{
    [Fact]
    public void Json_mode_output_is_a_json_object_the_same_on_every_path_and_tp()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        var eos = folder.Config.EosTokenIds;
        var ids = tok.Encode("Q: What is your fortune, as JSON? A: {\"fortune\": \"");
        int close = tok.Encode("}")[0];
        var requests = Enumerable.Range(0, 6).Select(i => new GenerationRequest
        {
            PromptIds = ids, MaxNewTokens = 40, ResponseFormat = ResponseFormat.JsonObject,
            // hot sampling, and "}" made less likely, so that the objects have something in them
            Sampling = new SamplingParams { Temperature = 1.3f, Seed = (ulong)i, LogitBias = i % 2 == 0 ? new Dictionary<int, float> { [close] = -4f } : null },
        }).Append(new GenerationRequest { PromptIds = ids, MaxNewTokens = 20 }).ToArray(); // a plain greedy sequence in the same batch
        int[][] Run(int tp, bool gather, bool toRoot, GenerationRequest[] rs) => ThreadRanks.Run(tp, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxSequences = rs.Length });
            var g = new Generator(m, folder.SamplableVocab, eos) { GatherLogits = gather, GatherToRoot = toRoot, TokenBytes = tok.TextTokenBytes };
            return g.Generate(rs).Select(r => r.Tokens).ToArray();
        })[0];
        var baseline = Run(1, false, false, requests);
        foreach (var tokens in new[] { Run(2, false, false, requests), Run(3, false, false, requests), Run(2, true, false, requests), Run(2, true, true, requests) })
            Assert.Equal(baseline, tokens);

        int nonEmpty = 0;
        for (int i = 0; i < 6; i++)
        {
            var text = baseline[i].Where(t => !eos.Contains(t)).SelectMany(t => tok.TextTokenBytes[t]!).ToArray();
            var state = new JsonState();
            Assert.True(state.Feed(text), $"output {i} is not a JSON prefix: {Encoding.UTF8.GetString(text)}");
            if (eos.Contains(baseline[i][^1])) Assert.True(JsonStateTests.Oracle(text), $"output {i} ended but System.Text.Json refuses {Encoding.UTF8.GetString(text)}");
            else Assert.Equal(40, baseline[i].Length);
            if (text.Count(b => b is not (byte)' ' and not (byte)'\n' and not (byte)'\t') > 4) nonEmpty++;
        }
        Assert.True(nonEmpty >= 3, "the objects are nearly empty; the test proves little");
        Assert.Contains(baseline.Take(6), t => eos.Contains(t[^1])); // some end: the end is allowed once the object is complete

        // without JSON mode the same sampling does not write JSON, and the plain row is the same as alone
        var free = Run(2, false, false, [.. requests.Take(6).Select(r => r with { ResponseFormat = ResponseFormat.Text })]);
        Assert.Contains(free, t => !new JsonState().Feed(t.Where(x => !eos.Contains(x)).SelectMany(x => tok.TextTokenBytes[x] ?? []).ToArray()));
        Assert.Equal(Run(2, false, false, [requests[^1]])[0], baseline[^1]);
    }

    [Fact]
    public void Json_mode_without_a_tokenizer_is_refused()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var e = Assert.ThrowsAny<TpLlmException>(() => ThreadRanks.Run(1, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxSequences = 1 });
            return new Generator(m, folder.SamplableVocab, []).Generate([new GenerationRequest { PromptIds = [1, 2], ResponseFormat = ResponseFormat.JsonObject }]);
        }));
        Assert.Contains("tokenizer", e.Message);
    }
}
