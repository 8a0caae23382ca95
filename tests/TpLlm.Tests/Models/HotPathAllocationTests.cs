using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Tests.Models;

[Collection(SerialCollection.Name)]
public class HotPathAllocationTests
{
    [Fact]
    public void A_decode_step_allocates_nothing_on_any_rank()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        var allocated = ThreadRanks.Run(2, comm =>
        {
            using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxContext = 128 });
            // every logit processor on, through the step executor the CLI and the server both run: penalties count each new
            // token, bias and min-tokens bans apply each step, JSON mode masks and parses
            var executor = new StepExecutor(m, folder.SamplableVocab, folder.Config.EosTokenIds, () => folder.Tokenizer!.TextTokenBytes);
            var sampling = new SamplingParams
            {
                PresencePenalty = 0.5f, FrequencyPenalty = 0.5f, RepetitionPenalty = 1.3f, MinTokens = 35,
                LogitBias = new Dictionary<int, float> { [13] = 1f, [30000] = -2f },
            };
            var sequence = new SequenceSpec([464], sampling, [11], ResponseFormat: ResponseFormat.JsonObject);
            var token = new int[1];
            var chunk = new SequenceChunk[1];
            void Step(int pos)
            {
                chunk[0] = new SequenceChunk(0, pos, 1);
                executor.Run(token, chunk, 1, wantLogprobs: false, token);
            }
            // one sequence of 40 steps; returns what steps 10..39 allocated (steps 0..9 let buffers grow to size)
            long Round()
            {
                token[0] = 464;
                executor.Begin(0, sequence, topLogprobs: -1);
                long before = 0;
                for (int p = 0; p < 40; p++)
                {
                    if (p == 10) before = GC.GetAllocatedBytesForCurrentThread();
                    Step(p);
                }
                Assert.True(executor.Processors.Json!.IsOn(0) && executor.Processors.IsActive(0), "JSON mode stayed on");
                return GC.GetAllocatedBytesForCurrentThread() - before;
            }
            // warm up until the JIT is done with these methods (tier-up and on-stack replacement compile on the running thread,
            // later on a loaded machine): rounds until none compiled a method for 300 ms (rank 0 decides, so the ranks stay in step)
            var settled = new int[1];
            long quietSince = System.Diagnostics.Stopwatch.GetTimestamp(), compiled = -1;
            for (int round = 0; round < 200 && settled[0] == 0; round++)
            {
                Round();
                long now = System.Runtime.JitInfo.GetCompiledMethodCount();
                if (now != compiled) (compiled, quietSince) = (now, System.Diagnostics.Stopwatch.GetTimestamp());
                settled[0] = round >= 2 && System.Diagnostics.Stopwatch.GetElapsedTime(quietSince).TotalMilliseconds > 300 ? 1 : 0;
                comm.Broadcast<int>(settled, 0);
            }
            return Round();
        });
        // one kernel thread per rank: each rank's thread does all of its step's work
        Assert.Equal([0L, 0L], allocated);
    }
}
