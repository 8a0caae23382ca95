using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
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
            using var m = LlamaModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, MaxContext = 128 });
            var head = (ColumnParallelLmHead)m.Head;
            var sampler = new VocabParallelSampler(comm, head.Partition, folder.SamplableVocab);
            var hidden = new float[m.Config.HiddenSize];
            var local = new float[head.Partition.ShardSize];
            var token = new int[] { 464 };
            var chunk = new SequenceChunk[1];
            void Step(int pos)
            {
                chunk[0] = new SequenceChunk(0, pos, 1);
                m.Forward(token, chunk, hidden);
                head.ForwardLocal(m.MatMul, hidden, 1, local);
                sampler.Greedy(local, 1, token);
            }
            for (int p = 0; p < 10; p++) Step(p); // warm-up: buffers grow to size, JIT settles
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int p = 10; p < 40; p++) Step(p);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        });
        // one kernel thread per rank: each rank's thread does all of its step's work
        Assert.Equal([0L, 0L], allocated);
    }
}
