using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>Automatic prefix caching: a prompt that starts like a finished sequence's tokens reuses its slot's keys and values.</summary>
public class PrefixCachingTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_follow_up_prompt_reuses_the_conversation_so_far_and_generates_what_a_cold_start_does(int tp)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        var first = tok.Encode("Q: What does a day without laughter mean? A:");
        var options = new ModelOptions { ComputeThreads = 1 };
        using var warm = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 3, Model = options });
        using var cold = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 3, Model = options, PrefixCaching = false });
        await Task.WhenAll(warm.Ready, cold.Ready);
        var answer = await warm.Submit(new GenerationRequest { PromptIds = first, MaxNewTokens = 10, IgnoreEos = true });
        Assert.Equal(0, answer.CachedPromptTokens);

        // the next turn: the conversation so far, then more text
        int[] next = [.. first, .. answer.Tokens, .. tok.Encode(" Q: And a day without sun? A:")];
        var request = new GenerationRequest
        {
            PromptIds = next, MaxNewTokens = 12, IgnoreEos = true, TopLogprobs = 3,
            Sampling = new SamplingParams { Temperature = 0.9f, Seed = 5, RepetitionPenalty = 1.2f }, // the penalties see the whole prompt
        };
        var reused = await warm.Submit(request);
        var fresh = await cold.Submit(request);
        Assert.Equal(first.Length + 9, reused.CachedPromptTokens); // the prompt and the answer fed back (its last token never was)
        Assert.Equal(0, fresh.CachedPromptTokens);
        Assert.Equal(fresh.Tokens, reused.Tokens);
        for (int i = 0; i < fresh.Tokens.Length; i++) Assert.Equal(fresh.Logprobs![i].Logprob, reused.Logprobs![i].Logprob, 1e-5f);
        Assert.Equal(first.Length + 9, warm.PrefixCacheHitTokensTotal);

        // the same prompt again: all but its last token; a prompt to score is prefilled whole; another prompt finds nothing
        Assert.Equal(next.Length - 1, (await warm.Submit(request)).CachedPromptTokens);
        var scored = await warm.Submit(new GenerationRequest { PromptIds = next, MaxNewTokens = 0, PromptLogprobs = 1 });
        Assert.Equal(0, scored.CachedPromptTokens);
        Assert.Equal(0, (await warm.Submit(new GenerationRequest { PromptIds = tok.Encode("Love is"), MaxNewTokens = 3 })).CachedPromptTokens);
    }

    [Fact]
    public async Task A_new_prompt_takes_the_free_slot_holding_the_least_so_longer_caches_survive()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 2, Model = new ModelOptions { ComputeThreads = 1 } });
        await engine.Ready;
        var longPrompt = tok.Encode("A long conversation that is worth keeping in the cache for a while, because it will come back");
        await engine.Submit(new GenerationRequest { PromptIds = longPrompt, MaxNewTokens = 2 });
        await engine.Submit(new GenerationRequest { PromptIds = tok.Encode("Short"), MaxNewTokens = 2 }); // into the other, empty slot
        await engine.Submit(new GenerationRequest { PromptIds = tok.Encode("Another short one"), MaxNewTokens = 2 }); // evicts "Short", not the long one
        var back = await engine.Submit(new GenerationRequest { PromptIds = [.. longPrompt, .. tok.Encode(" again")], MaxNewTokens = 2 });
        Assert.Equal(longPrompt.Length, back.CachedPromptTokens);
    }
    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    public async Task Choices_of_one_prompt_prefill_it_once_and_copy_it_with_the_same_outputs(int maxPrefillTokens)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        var prompt = tok.Encode("System: You are a fortune teller who answers in riddles and proverbs, always politely, never twice the same way, and briefly. User: What does tomorrow hold for me and for my family? Assistant:");
        Assert.True(prompt.Length > 2 * ContinuousBatcher.MinSharedPrefix);
        var requests = Enumerable.Range(0, 4).Select(i => new GenerationRequest
        {
            PromptIds = prompt, MaxNewTokens = 10, IgnoreEos = true, TopLogprobs = 1,
            Sampling = new SamplingParams { Temperature = 1f, Seed = (ulong)(10 + i) },
        }).Append(new GenerationRequest { PromptIds = tok.Encode("Unrelated"), MaxNewTokens = 10 }).ToArray();
        var options = new ModelOptions { ComputeThreads = 1 };
        using var shared = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 5, Model = options, MaxPrefillTokens = maxPrefillTokens });
        using var cold = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 5, Model = options, MaxPrefillTokens = maxPrefillTokens, PrefixCaching = false });
        await Task.WhenAll(shared.Ready, cold.Ready);
        var results = await Task.WhenAll(requests.Select(r => shared.Submit(r)));
        var expected = await Task.WhenAll(requests.Select(r => cold.Submit(r)));
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.Equal(expected[i].Tokens, results[i].Tokens);
            for (int t = 0; t < (expected[i].Logprobs?.Length ?? 0); t++) Assert.Equal(expected[i].Logprobs![t].Logprob, results[i].Logprobs![t].Logprob, 1e-5f);
        }
        // the first choice prefilled the prompt; the other three waited for it (until less than MinSharedPrefix of it
        // was left to prefill) and copied what it had
        Assert.Equal(0, results[0].CachedPromptTokens);
        Assert.Equal(0, results[4].CachedPromptTokens);
        for (int i = 1; i < 4; i++) Assert.InRange(results[i].CachedPromptTokens, prompt.Length - ContinuousBatcher.MinSharedPrefix, prompt.Length - 1);
        Assert.Equal(results.Sum(r => r.CachedPromptTokens), shared.PrefixCacheHitTokensTotal);
    }

    [Fact]
    public async Task A_running_sequence_lends_its_prefix_to_a_prompt_that_extends_it()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 2, Model = new ModelOptions { ComputeThreads = 1 } });
        await engine.Ready;
        var system = tok.Encode("System: You are a fortune teller who answers in riddles and proverbs, always politely.");
        var started = new TaskCompletionSource();
        var running = engine.Submit(new GenerationRequest { PromptIds = [.. system, .. tok.Encode(" User: Hi")], MaxNewTokens = 30, IgnoreEos = true },
            (_, _) => started.TrySetResult());
        await started.Task;
        var byeRequest = new GenerationRequest { PromptIds = [.. system, .. tok.Encode(" User: Bye")], MaxNewTokens = 6, IgnoreEos = true };
        var other = await engine.Submit(byeRequest);
        Assert.InRange(other.CachedPromptTokens, system.Length, system.Length + 2); // copied from the slot still decoding
        await running;
        using var cold = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 }, PrefixCaching = false });
        await cold.Ready;
        Assert.Equal((await cold.Submit(byeRequest)).Tokens, other.Tokens);
    }
}
