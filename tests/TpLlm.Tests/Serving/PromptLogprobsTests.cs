using TpLlm.Checkpoints;
using TpLlm.Models;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>Prompt logprobs (vLLM's prompt_logprobs; echo with logprobs) against transformers' logits at every prompt position.</summary>
public class PromptLogprobsTests
{
    [Theory]
    [InlineData("llama3-mini", 1)]
    [InlineData("llama3-mini", 3)]
    [InlineData("fortune-llama", 2)]
    public async Task Every_prompt_token_gets_the_references_log_probability_and_top_5(string model, int tp)
    {
        var (folderPath, refPath, prompts) = Models.ModelFixtureTests.Fixture(model);
        using var reference = new SafetensorsFile(refPath);
        using var folder = ModelFolder.Open(folderPath);
        using var engine = new ContinuousBatcher(folder, tp, new BatcherOptions { MaxBatch = 4, Model = new ModelOptions { ComputeThreads = 1 } });
        await engine.Ready;
        var runs = Enumerable.Range(0, prompts).Select(p =>
        {
            var ids = reference.ReadI64($"prompt{p}.input_ids").Select(i => (int)i).ToArray();
            // the prompt alone, and the prompt with generation: the same scores, the same tokens as without scoring
            return (p, ids, Alone: engine.Submit(new GenerationRequest { PromptIds = ids, MaxNewTokens = 0, PromptLogprobs = 5 }),
                WithTokens: engine.Submit(new GenerationRequest { PromptIds = ids, MaxNewTokens = 4, PromptLogprobs = 2, IgnoreEos = true }),
                Plain: engine.Submit(new GenerationRequest { PromptIds = ids, MaxNewTokens = 4, IgnoreEos = true }));
        }).ToArray();
        foreach (var (p, ids, aloneTask, withTask, plainTask) in runs)
        {
            var alone = await aloneTask;
            var logits = reference.ReadF32($"prompt{p}.logits");
            var topIds = reference.ReadI64($"prompt{p}.top5_ids");
            var topLp = reference.ReadF32($"prompt{p}.top5_logprobs");
            int V = logits.Length / ids.Length;
            Assert.Empty(alone.Tokens);
            Assert.Equal(FinishReason.MaxTokens, alone.Reason);
            Assert.Equal(ids.Length, alone.PromptLogprobs!.Length);
            Assert.Null(alone.PromptLogprobs[0]);
            for (int i = 1; i < ids.Length; i++)
            {
                var lp = alone.PromptLogprobs[i]!;
                // log p(ids[i] | ids[..i]) from the reference's logits at position i − 1, in double
                Assert.Equal(ids[i], lp.Id);
                Assert.Equal(ReferenceLogprobs.At(logits.AsSpan((i - 1) * V, V), ids[i]), lp.Logprob, 1e-3);
                Assert.Equal(5, lp.Top.Length);
                for (int k = 0; k < 5; k++)
                {
                    Assert.Equal((int)topIds[(i - 1) * 5 + k], lp.Top[k].Id);
                    Assert.Equal(topLp[(i - 1) * 5 + k], lp.Top[k].Logprob, 1e-3f);
                }
            }
            var with = await withTask;
            Assert.Equal((await plainTask).Tokens, with.Tokens);
            Assert.Equal(alone.PromptLogprobs!.Skip(1).Select(l => l!.Logprob), with.PromptLogprobs!.Skip(1).Select(l => l!.Logprob));
            Assert.All(with.PromptLogprobs!.Skip(1), l => Assert.Equal(2, l!.Top.Length));
        }
    }

    [Fact]
    public async Task Zero_new_tokens_without_scoring_the_prompt_is_refused()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 1, Model = new ModelOptions { ComputeThreads = 1 } });
        await engine.Ready;
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.Submit(new GenerationRequest { PromptIds = [1, 2], MaxNewTokens = 0 }));
        Assert.Contains("max_tokens 0 must be ≥ 1 (0 only when scoring the prompt)", e.Message);
        e = await Assert.ThrowsAsync<InvalidRequestException>(() => engine.Submit(new GenerationRequest { PromptIds = [1, 2], PromptLogprobs = 21 }));
        Assert.Contains("prompt_logprobs 21 is outside [0, 20]", e.Message);
    }
}
