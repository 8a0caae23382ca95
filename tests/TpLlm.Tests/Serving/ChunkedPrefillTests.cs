using TpLlm.Models;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>Chunked prefill: a long prompt is prefilled a few tokens a step while running sequences keep decoding.</summary>
public class ChunkedPrefillTests
{
    [Theory]
    [InlineData(8, 10)] // 100 prompt tokens, 8 a step: the running sequence decodes between the chunks
    [InlineData(0, 0)]  // whole prompts: the long prompt is one step
    public async Task A_running_sequence_keeps_decoding_while_a_long_prompt_is_prefilled(int maxPrefillTokens, int atLeast)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        using var engine = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 2, Model = new ModelOptions { ComputeThreads = 1 }, MaxPrefillTokens = maxPrefillTokens });
        await engine.Ready;
        int aTokens = 0, aAtSubmit = -1, aAtFirstToken = -1;
        var started = new TaskCompletionSource();
        using var stopA = new CancellationTokenSource();
        // a runs until b is done, however slowly this machine runs the test
        var a = engine.Submit(new GenerationRequest { PromptIds = tok.Encode("A day without"), MaxNewTokens = 400, IgnoreEos = true }, (_, _) =>
        {
            aTokens++;
            started.TrySetResult();
        }, stopA.Token);
        await started.Task;
        // b is submitted while the engine waits between two steps, so the count of a's tokens before b's first one is
        // counted in steps, not in this thread's luck with the scheduler
        using var paused = new SemaphoreSlim(0);
        using var resume = new ManualResetEventSlim(false);
        engine.AfterStep = () => { paused.Release(); resume.Wait(); };
        await paused.WaitAsync();
        engine.AfterStep = null;
        var longPrompt = Enumerable.Range(0, 100).Select(i => tok.Encode(" fortune")[0] + i % 7).ToArray();
        var bRequest = new GenerationRequest { PromptIds = longPrompt, MaxNewTokens = 3, IgnoreEos = true };
        aAtSubmit = Volatile.Read(ref aTokens);
        var b = engine.Submit(bRequest, (_, _) => { if (aAtFirstToken < 0) aAtFirstToken = aTokens; });
        resume.Set();
        var result = await b;
        stopA.Cancel();
        await a;
        int between = aAtFirstToken - aAtSubmit;
        if (atLeast > 0) Assert.True(between >= atLeast, $"the running sequence got {between} tokens while 100 prompt tokens were prefilled {maxPrefillTokens} a step");
        else Assert.InRange(between, 0, 2);
        // and chunking changes nothing in what is generated
        using var whole = new ContinuousBatcher(folder, 2, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 }, MaxPrefillTokens = 0, PrefixCaching = false });
        await whole.Ready;
        Assert.Equal((await whole.Submit(bRequest)).Tokens, result.Tokens);
    }

    [Fact]
    public async Task A_request_cancelled_half_prefilled_frees_its_slot_and_its_cached_half_serves_the_next()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 }, MaxPrefillTokens = 4 });
        await engine.Ready;
        var prompt = Enumerable.Range(0, 40).Select(i => 300 + i).ToArray();
        using var cts = new CancellationTokenSource();
        int steps = 0;
        engine.AfterStep = () => { if (++steps == 3) cts.Cancel(); }; // after 12 of 40 prompt tokens
        var cancelled = await engine.Submit(new GenerationRequest { PromptIds = prompt, MaxNewTokens = 5 }, ct: cts.Token);
        engine.AfterStep = null;
        Assert.Equal(FinishReason.Cancelled, cancelled.Reason);
        Assert.Empty(cancelled.Tokens);
        var next = await engine.Submit(new GenerationRequest { PromptIds = prompt, MaxNewTokens = 5 });
        Assert.InRange(next.CachedPromptTokens, 12, 16); // the half that was prefilled before the cancel was seen
        using var cold = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 }, PrefixCaching = false });
        await cold.Ready;
        Assert.Equal((await cold.Submit(new GenerationRequest { PromptIds = prompt, MaxNewTokens = 5 })).Tokens, next.Tokens);
    }

    [Fact]
    public void A_negative_budget_is_refused()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 } });
        var e = Assert.Throws<InvalidRequestException>(() => engine.MaxPrefillTokens = -1);
        Assert.Contains("max_prefill_tokens -1 must be ≥ 0", e.Message);
        Assert.Contains("--max-prefill-tokens -1 must be ≥ 0", e.MessageNaming(TpLlm.Cli.CliRunner.OptionName));
    }
}
