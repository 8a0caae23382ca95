using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

public class ContinuousBatcherTests
{
    private static readonly string[] Prompts =
    [
        "A day without", "Computers are", "The meaning of life is", "Love is", "Never trust", "It is easier to",
        "The best way to", "Money can", "He who laughs", "Time flies", "A friend", "All that glitters",
        "When in doubt", "Every cloud", "Life is short", "Knowledge is",
    ];

    private static GenerationResult[] Alone(ModelFolder folder, GenerationRequest[] requests) =>
        requests.Select(r => ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1 });
            return new Generator(m, folder.SamplableVocab, folder.Config.EosTokenIds) { TokenBytes = folder.Tokenizer!.TextTokenBytes }.Generate([r])[0];
        })[0]).ToArray();

    [Theory]
    [InlineData(0)] // whole prompts
    [InlineData(2)] // prompts prefilled 2 tokens a step, between the other sequences' decode steps
    public async Task Sixteen_requests_joining_at_different_times_each_equal_their_single_request_output(int maxPrefillTokens)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var requests = Prompts.Select((p, i) => new GenerationRequest
        {
            PromptIds = folder.Tokenizer!.Encode(p),
            MaxNewTokens = 12 + i % 5,
            Sampling = (i % 4 == 3 ? new SamplingParams { Temperature = 0.9f, TopK = 40, Seed = (ulong)i } : SamplingParams.Greedy) with
            {
                // penalties follow each sequence through slots other sequences used before
                PresencePenalty = i % 3 == 1 ? 1.2f : 0f, FrequencyPenalty = i % 3 == 2 ? 0.8f : 0f, RepetitionPenalty = i % 6 == 1 ? 1.5f : 1f,
                LogitBias = i % 5 == 2 ? new Dictionary<int, float> { [198] = -100f, [13] = 2.5f } : null, // no newlines, more full stops
                MinTokens = i % 7 == 3 ? 12 : i % 7 == 5 ? 4 : 0,
            },
            TopLogprobs = i % 5 == 0 ? 2 : 0,
            StopTokenIds = i % 7 == 5 ? [13, 11] : [], // "." and ",", banned for the first 4 tokens
            ResponseFormat = i % 4 == 1 ? ResponseFormat.JsonObject : ResponseFormat.Text, // JSON mode in slots plain sequences used, and back
        }).ToArray();
        var expected = Alone(folder, requests);
        using var engine = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 6, Model = new ModelOptions { ComputeThreads = 1 }, MaxPrefillTokens = maxPrefillTokens });
        await engine.Ready;
        var firstToken = new TaskCompletionSource();
        var tasks = new List<Task<GenerationResult>>();
        for (int i = 0; i < 8; i++) tasks.Add(engine.Submit(requests[i], (_, _) => firstToken.TrySetResult()));
        await firstToken.Task; // the rest join a batch that is already running (and wait for free slots)
        for (int i = 8; i < 16; i++) tasks.Add(engine.Submit(requests[i]));
        var results = await Task.WhenAll(tasks);
        for (int i = 1; i < 16; i += 4) // JSON mode acted: each output is a JSON object, or a prefix of one
            Assert.True(new TpLlm.Sampling.Json.JsonState().Feed(results[i].Tokens.SelectMany(t => folder.Tokenizer!.TextTokenBytes[t] ?? []).ToArray()), $"request {i}");
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(expected[i].Tokens, results[i].Tokens);
            Assert.Equal(expected[i].Reason, results[i].Reason);
            if (requests[i].TopLogprobs > 0)
                for (int t = 0; t < results[i].Tokens.Length; t++)
                    Assert.Equal(expected[i].Logprobs![t].Logprob, results[i].Logprobs![t].Logprob, 1e-5f);
        }
    }

    [Fact]
    public async Task A_request_submitted_as_the_engine_stops_ends_instead_of_waiting()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 } });
        await engine.Ready;
        // the engine stops (its ranks end, its queue is swept: empty) after Submit's checks, before the request is queued
        engine.BeforeQueue = engine.Dispose;
        var request = engine.Submit(new GenerationRequest { PromptIds = [5377, 41510, 389], MaxNewTokens = 4 });
        await Assert.ThrowsAsync<ObjectDisposedException>(() => request.WaitAsync(TimeSpan.FromSeconds(60)));
        engine.BeforeQueue = null;
        Exception? late = null; // once stopped, Submit itself throws
        try { _ = engine.Submit(new GenerationRequest { PromptIds = [5377], MaxNewTokens = 1 }); }
        catch (Exception e) { late = e; }
        Assert.IsType<ObjectDisposedException>(late);
    }

    [Fact]
    public async Task A_cancelled_request_frees_its_slot_and_bad_requests_fail_alone()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        using var engine = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 } });
        using var cts = new CancellationTokenSource();
        int seen = 0;
        var endless = engine.Submit(new GenerationRequest { PromptIds = [32, 1110, 1231], MaxNewTokens = 100_000, IgnoreEos = true },
            (_, _) => { if (++seen == 5) cts.Cancel(); }, cts.Token);
        var tooLong = engine.Submit(new GenerationRequest { PromptIds = Enumerable.Repeat(32, 600).ToArray() });
        var next = engine.Submit(new GenerationRequest { PromptIds = [5377, 41510, 389], MaxNewTokens = 4 }); // waits for the only slot
        var cancelled = await endless;
        Assert.Equal(FinishReason.Cancelled, cancelled.Reason);
        Assert.InRange(cancelled.Tokens.Length, 5, 6);
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() => tooLong);
        Assert.Contains("maximum context length is 512 tokens. However, you requested 600 tokens in the prompt", e.Message);
        Assert.Equal("context_length_exceeded", e.Code);
        var nextResult = await next;
        Assert.Equal(new[] { 407, 691, 4961, 284 }, nextResult.Tokens);
    }
}
