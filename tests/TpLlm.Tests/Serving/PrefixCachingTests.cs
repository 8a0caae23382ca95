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
        using var warm = new ContinuousBatcher(folder, tp, maxBatch: 3, options);
        using var cold = new ContinuousBatcher(folder, tp, maxBatch: 3, options) { PrefixCaching = false };
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
        using var engine = new ContinuousBatcher(folder, 1, maxBatch: 2, new ModelOptions { ComputeThreads = 1 });
        await engine.Ready;
        var longPrompt = tok.Encode("A long conversation that is worth keeping in the cache for a while, because it will come back");
        await engine.Submit(new GenerationRequest { PromptIds = longPrompt, MaxNewTokens = 2 });
        await engine.Submit(new GenerationRequest { PromptIds = tok.Encode("Short"), MaxNewTokens = 2 }); // into the other, empty slot
        await engine.Submit(new GenerationRequest { PromptIds = tok.Encode("Another short one"), MaxNewTokens = 2 }); // evicts "Short", not the long one
        var back = await engine.Submit(new GenerationRequest { PromptIds = [.. longPrompt, .. tok.Encode(" again")], MaxNewTokens = 2 });
        Assert.Equal(longPrompt.Length, back.CachedPromptTokens);
    }
}
