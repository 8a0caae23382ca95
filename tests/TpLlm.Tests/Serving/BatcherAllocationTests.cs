using TpLlm.Models;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

[Collection(SerialCollection.Name)]
public class BatcherAllocationTests
{
    [Fact]
    public async Task A_decode_step_of_the_batch_allocates_nothing_on_rank_0()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        using var engine = new ContinuousBatcher(folder, 1, new BatcherOptions { MaxBatch = 3, Model = new ModelOptions { ComputeThreads = 1, MaxContext = 128 } });
        await engine.Ready;
        var perStep = new List<long>(200);
        long last = 0;
        engine.AfterStep = () => // on rank 0's thread, which plans, runs rank 0 and delivers
        {
            long now = GC.GetAllocatedBytesForCurrentThread();
            if (perStep.Count < perStep.Capacity) perStep.Add(now - last);
            last = now;
        };
        var ids = folder.Tokenizer!.Encode("A day without");
        Task Batch() => Task.WhenAll(
            engine.Submit(new GenerationRequest { PromptIds = ids, MaxNewTokens = 60, IgnoreEos = true }),
            engine.Submit(new GenerationRequest { PromptIds = ids, MaxNewTokens = 60, IgnoreEos = true, Sampling = new TpLlm.Sampling.SamplingParams { Temperature = 0.8f, TopK = 20, Seed = 1 } }),
            engine.Submit(new GenerationRequest
            {
                PromptIds = ids, MaxNewTokens = 60, IgnoreEos = true, ResponseFormat = TpLlm.Sampling.ResponseFormat.JsonObject,
                Sampling = new TpLlm.Sampling.SamplingParams { Temperature = 1f, TopP = 0.9f, MinP = 0.01f, PresencePenalty = 0.5f, Seed = 2 },
            }));
        // warm up until the JIT is done with the step's methods (tier-up and on-stack replacement compile on the running
        // thread, later on a loaded machine): batches until none compiled a method for 300 ms
        long compiled = -1, quietSince = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int round = 0; round < 50; round++)
        {
            await Batch();
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) (compiled, quietSince) = (now, System.Diagnostics.Stopwatch.GetTimestamp());
            else if (round >= 2 && System.Diagnostics.Stopwatch.GetElapsedTime(quietSince).TotalMilliseconds > 300) break;
        }
        perStep.Clear();
        await Batch();
        engine.AfterStep = null;
        // steps 10..50: every sequence decoding (greedy; top-k; top-p, min-p, a penalty and JSON mode) (warm-up and the last steps, which end the requests, left out)
        Assert.True(perStep.Count >= 55, $"{perStep.Count} steps");
        Assert.All(perStep.Skip(10).Take(40), bytes => Assert.Equal(0L, bytes));
    }
}
