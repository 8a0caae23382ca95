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
            using var m = LlamaModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 2, MaxContext = 128 });
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
            comm.Barrier();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int p = 10; p < 40; p++) Step(p);
            comm.Barrier();
            return GC.GetTotalAllocatedBytes(precise: true) - before;
        });
        // the counter is process-wide, so this covers both ranks and their compute threads
        Assert.True(allocated[0] < 1024, $"30 decode steps on 2 ranks allocated {allocated[0]} bytes");
    }
}
