using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>
/// Gemma 3 (a sliding window of 16 kept in rings of 79) served with chunked prefill and prefix caching: shared
/// prefixes longer than a ring, reused only while the ring still holds the window before them, give each request's
/// cold single-run tokens.
/// </summary>
public class SlidingWindowServingTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Overlapping_requests_on_rings_equal_their_cold_single_runs(int tp)
    {
        using var folder = ModelFolder.Open(Paths.Gemma3Mini);
        var rng = new Random(tp);
        int[][] prefixes = [.. new[] { 70, 85, 20 }.Select(n => Enumerable.Range(0, n).Select(_ => rng.Next(3, 2000)).ToArray())];
        var requests = Enumerable.Range(0, 16).Select(i => new GenerationRequest
        {
            PromptIds = [.. prefixes[rng.Next(3)], .. Enumerable.Range(0, rng.Next(0, 6)).Select(_ => rng.Next(3, 2000))],
            MaxNewTokens = rng.Next(1, 110), IgnoreEos = true, // past a shared prefix by more than a ring keeps
            Sampling = i % 3 == 0 ? SamplingParams.Greedy : new SamplingParams { Temperature = 0.9f, Seed = (ulong)i },
        }).ToArray();
        var options = new ModelOptions { ComputeThreads = 1 };
        var expected = new GenerationResult[requests.Length];
        using (var cold = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 1, Model = options, PrefixCaching = false, MaxPrefillTokens = 0 }))
        {
            await cold.Ready;
            for (int i = 0; i < requests.Length; i++) expected[i] = await cold.Submit(requests[i]);
        }
        using var hot = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 3, Model = options, MaxPrefillTokens = 16 });
        await hot.Ready;
        var tasks = new List<Task<GenerationResult>>();
        foreach (var r in requests)
        {
            tasks.Add(hot.Submit(r));
            if (rng.Next(3) == 0) await Task.Delay(rng.Next(1, 10));
        }
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < requests.Length; i++)
            Assert.True(expected[i].Tokens.SequenceEqual(results[i].Tokens), $"request {i}: {string.Join(",", results[i].Tokens)} against {string.Join(",", expected[i].Tokens)} alone");
        Assert.True(hot.PrefixCacheHitTokensTotal > 0, "no prefix was reused; the test proves less than it says");
    }
}
