using TpLlm.Distributed;

namespace TpLlm.Tests.Distributed;

public class CommunicatorTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    public void Collectives_give_every_rank_the_same_answer(int n)
    {
        var results = ThreadRanks.Run(n, comm =>
        {
            int r = comm.Rank;
            var counts = Enumerable.Range(0, n).Select(i => i + 1).ToArray();
            var mine = Enumerable.Repeat(r * 10.0f, r + 1).ToArray();
            var all = new float[counts.Sum()];
            comm.AllGatherV<float>(mine, all, counts);
            var sum = new[] { (float)r, 1f, -r };
            comm.AllReduce(sum, ReduceOp.Sum);
            var max = new[] { (double)r, -r };
            comm.AllReduce(max, ReduceOp.Max);
            var b = new long[] { r == n - 1 ? 42 : 0 };
            comm.Broadcast<long>(b, n - 1);
            var g = new int[n];
            comm.Gather<int>([r * r], r == 0 ? g : [], 0);
            comm.Barrier();
            return (all, sum, max, b[0], g);
        });
        var expectedAll = Enumerable.Range(0, n).SelectMany(i => Enumerable.Repeat(i * 10.0f, i + 1)).ToArray();
        foreach (var (all, sum, max, b, _) in results)
        {
            Assert.Equal(expectedAll, all);
            Assert.Equal(new[] { n * (n - 1) / 2f, n, -n * (n - 1) / 2f }, sum);
            Assert.Equal(new[] { n - 1.0, 0.0 }, max);
            Assert.Equal(42, b);
        }
        Assert.Equal(Enumerable.Range(0, n).Select(i => i * i).ToArray(), results[0].g);
    }

    [Fact]
    public void Split_makes_dp_groups_of_tp_ranks()
    {
        var results = ThreadRanks.Run(6, world =>
        {
            using var tp = world.SplitTensorParallel(3);
            var v = new[] { (float)world.Rank };
            tp.AllReduce(v, ReduceOp.Sum);
            return (tp.Rank, tp.Size, v[0]);
        });
        Assert.Equal([(0, 3, 3f), (1, 3, 3f), (2, 3, 3f), (0, 3, 12f), (1, 3, 12f), (2, 3, 12f)], results);
    }

    [Fact]
    public void An_error_on_one_rank_ends_every_rank_with_its_message()
    {
        var start = DateTime.UtcNow;
        var e = Assert.Throws<RankFailedException>(() => ThreadRanks.Run(4, comm =>
        {
            if (comm.Rank == 3) throw new InvalidOperationException("tensor 'x' missing on rank 3");
            for (int i = 0; i < 1000; i++) comm.Barrier();
        }));
        Assert.Equal(3, e.FailedRank);
        Assert.Contains("tensor 'x' missing on rank 3", e.Message);
        Assert.True(DateTime.UtcNow - start < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Mismatched_sizes_fail_on_every_rank()
    {
        var e = Assert.Throws<RankFailedException>(() => ThreadRanks.Run(2, comm =>
        {
            var data = new float[comm.Rank == 0 ? 4 : 5];
            comm.AllReduce(data, ReduceOp.Sum);
        }));
        Assert.Contains("reduces", e.Message);
        var e2 = Assert.Throws<RankFailedException>(() => ThreadRanks.Run(2, comm =>
        {
            if (comm.Rank == 0) comm.Barrier();
            else comm.AllReduce(new float[1], ReduceOp.Sum);
        }));
        Assert.Contains("different collective", e2.Message);
    }

    [Fact]
    public void A_rank_that_never_arrives_times_out()
    {
        var e = Assert.Throws<RankFailedException>(() => ThreadRanks.Run(2, comm =>
        {
            if (comm.Rank == 0) comm.Barrier();
            else Thread.Sleep(3000);
        }, TimeSpan.FromMilliseconds(300)));
        Assert.IsType<CollectiveTimeoutException>(e.InnerException);
        Assert.Contains("0.3 s", e.Message);
    }

    [Fact]
    public void Counting_communicator_counts_bytes()
    {
        var counts = ThreadRanks.Run(2, comm =>
        {
            var c = new CountingCommunicator(comm);
            c.AllGather<float>(new float[10], new float[20]);
            c.AllReduce(new float[3], ReduceOp.Max);
            return c;
        });
        Assert.Equal(40, counts[0].AllGathers.BytesSent);
        Assert.Equal(40, counts[0].AllGathers.BytesReceived);
        Assert.Equal(12, counts[1].AllReduces.BytesSent);
        Assert.Equal(1, counts[1].AllReduces.Calls);
    }
}
