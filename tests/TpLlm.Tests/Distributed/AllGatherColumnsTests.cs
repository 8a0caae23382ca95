using TpLlm.Distributed;

namespace TpLlm.Tests.Distributed;

public class AllGatherColumnsTests
{
    // [rows = 4, ld = 12]; rank r owns columns [offsets[r], offsets[r] + counts[r]); rank 2's block is empty
    private static readonly int[] Offsets = [0, 5, 9, 9], Counts = [5, 4, 0, 2];

    private static float Value(int r, int t, int c) => r * 1000 + t * 100 + c;

    private static float[] Run(ICommunicator comm)
    {
        const int rows = 4, ld = 12;
        var buffer = Enumerable.Repeat(-1f, rows * ld).ToArray();
        for (int t = 0; t < rows; t++)
            for (int c = Offsets[comm.Rank]; c < Offsets[comm.Rank] + Counts[comm.Rank]; c++) buffer[t * ld + c] = Value(comm.Rank, t, c);
        comm.AllGatherColumns<float>(buffer, rows, ld, Offsets, Counts);
        return buffer;
    }

    private static void AssertGathered(float[] buffer)
    {
        for (int t = 0; t < 4; t++)
            for (int c = 0; c < 12; c++)
            {
                int owner = -1;
                for (int r = 0; r < 4; r++) if (c >= Offsets[r] && c < Offsets[r] + Counts[r]) owner = r;
                Assert.Equal(owner < 0 ? -1f : Value(owner, t, c), buffer[t * 12 + c]);
            }
    }

    [Fact]
    public void Thread_ranks_copy_every_block_into_place_and_leave_the_rest()
    {
        foreach (var buffer in ThreadRanks.Run(4, Run)) AssertGathered(buffer);
    }

    [Fact]
    public void The_default_packs_gathers_and_unpacks_to_the_same_result()
    {
        foreach (var buffer in ThreadRanks.Run(4, comm => Run(new DefaultOnly(comm)))) AssertGathered(buffer);
    }

    [Fact]
    public void Counting_counts_the_blocks_that_cross()
    {
        var counted = ThreadRanks.Run(4, comm => { var c = new CountingCommunicator(comm); Run(c); return c; });
        Assert.Equal(4 * 5 * 4 * 3, counted[0].AllGathers.BytesSent);
        Assert.Equal(4 * (4 + 2) * 4, counted[0].AllGathers.BytesReceived);
    }

    [Fact]
    public void A_block_outside_the_row_fails_every_rank()
    {
        var e = Assert.ThrowsAny<Exception>(() => ThreadRanks.Run(2, comm =>
            comm.AllGatherColumns<float>(new float[20], 2, 10, [0, 5], [5, comm.Rank == 1 ? 6 : 5])));
        Assert.Contains("outside a row of 10", e.ToString());
    }

    // a communicator that keeps ICommunicator's default AllGatherColumns (pack, AllGatherV, unpack)
    private sealed class DefaultOnly(ICommunicator inner) : ICommunicator
    {
        public int Rank => inner.Rank;
        public int Size => inner.Size;
        public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged => inner.AllGatherV(send, recv, counts);
        public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged => inner.GatherV(send, recv, counts, root);
        public void AllReduce(Span<float> data, ReduceOp op) => inner.AllReduce(data, op);
        public void AllReduce(Span<double> data, ReduceOp op) => inner.AllReduce(data, op);
        public void Broadcast<T>(Span<T> data, int root) where T : unmanaged => inner.Broadcast(data, root);
        public void Barrier() => inner.Barrier();
        public ICommunicator Split(int color, int key) => inner.Split(color, key);
        public void Abort(Exception cause) => inner.Abort(cause);
        public void Dispose() { }
    }
}
