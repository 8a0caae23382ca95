using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>
/// Everything the scheduler does at once — chunked prefill, prefix caching in and across slots, waiting for a shared
/// prefill, prompt scoring, JSON mode, cancellations, slots reused — against each request run alone, cold.
/// </summary>
public class SchedulerDifferentialTests
{
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    public async Task Random_overlapping_requests_equal_their_cold_single_runs(int seed, int tp)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        var rng = new Random(seed);
        string[] prefixes =
        [
            "System: You are a fortune teller who answers in riddles and proverbs, always politely and briefly. User:",
            "Q: What does a day without laughter mean for a man who works every day of the week? A:",
            "Love is",
        ];
        var requests = Enumerable.Range(0, 24).Select(i =>
        {
            int[] prompt = [.. tok.Encode(prefixes[rng.Next(prefixes.Length)]), .. Enumerable.Range(0, rng.Next(0, 6)).Select(_ => rng.Next(200, 5000))];
            int kind = rng.Next(6);
            return new GenerationRequest
            {
                PromptIds = prompt, MaxNewTokens = kind == 5 ? 0 : rng.Next(1, 12), IgnoreEos = rng.Next(2) == 0,
                PromptLogprobs = kind is 4 or 5 ? 2 : null, ResponseFormat = kind == 3 ? ResponseFormat.JsonObject : ResponseFormat.Text,
                TopLogprobs = kind == 2 ? 2 : 0,
                Sampling = kind == 0 ? SamplingParams.Greedy : new SamplingParams { Temperature = 0.9f, Seed = (ulong)i, PresencePenalty = kind == 1 ? 0.5f : 0f },
            };
        }).ToArray();
        var cancelAt = requests.Select(_ => rng.Next(8) == 0 ? rng.Next(0, 40) : -1).ToArray();

        var options = new ModelOptions { ComputeThreads = 1 };
        GenerationResult[] expected;
        using (var cold = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 1, Model = options, PrefixCaching = false, MaxPrefillTokens = 0 }))
        {
            await cold.Ready;
            expected = new GenerationResult[requests.Length];
            for (int i = 0; i < requests.Length; i++) expected[i] = await cold.Submit(requests[i]);
        }
        using var hot = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 4, Model = options, MaxPrefillTokens = 5 });
        await hot.Ready;
        var tasks = new List<Task<GenerationResult>>();
        var sources = new List<CancellationTokenSource>();
        for (int i = 0; i < requests.Length; i++)
        {
            var cts = new CancellationTokenSource();
            sources.Add(cts);
            if (cancelAt[i] >= 0) cts.CancelAfter(cancelAt[i]);
            tasks.Add(hot.Submit(requests[i], ct: cts.Token));
            if (rng.Next(3) == 0) await Task.Delay(rng.Next(1, 15)); // arrivals spread over the running batch
        }
        var results = await Task.WhenAll(tasks);
        foreach (var c in sources) c.Dispose();
        int compared = 0;
        for (int i = 0; i < requests.Length; i++)
        {
            if (results[i].Reason == FinishReason.Cancelled) continue;
            compared++;
            Assert.True(expected[i].Tokens.SequenceEqual(results[i].Tokens), $"request {i}: {string.Join(",", results[i].Tokens)} against {string.Join(",", expected[i].Tokens)} alone");
            Assert.Equal(expected[i].Reason, results[i].Reason);
            if (requests[i].PromptLogprobs is not null)
                for (int t = 1; t < requests[i].PromptIds.Length; t++)
                    Assert.Equal(expected[i].PromptLogprobs![t]!.Logprob, results[i].PromptLogprobs![t]!.Logprob, 1e-5f);
            if (requests[i].TopLogprobs > 0)
                for (int t = 0; t < results[i].Tokens.Length; t++) Assert.Equal(expected[i].Logprobs![t].Logprob, results[i].Logprobs![t].Logprob, 1e-5f);
        }
        Assert.True(compared >= 18, $"only {compared} requests ran to the end");
        Assert.True(hot.PrefixCacheHitTokensTotal > 0, "no prefix was reused; the test proves less than it says");
    }
}
