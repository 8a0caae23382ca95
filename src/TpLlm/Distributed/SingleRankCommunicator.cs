namespace TpLlm.Distributed;

/// <summary>A group of one rank: gathers copy, reductions and barriers do nothing.</summary>
public sealed class SingleRankCommunicator : ICommunicator
{
    /// <inheritdoc />
    public int Rank => 0;

    /// <inheritdoc />
    public int Size => 1;

    /// <inheritdoc />
    public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged
    {
        Check(send.Length, counts);
        send.CopyTo(recv);
    }

    /// <inheritdoc />
    public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged
    {
        if (root != 0) throw new TpLlmException($"gather root {root} outside a group of 1 rank");
        AllGatherV(send, recv, counts);
    }

    /// <inheritdoc />
    public void AllReduce(Span<float> data, ReduceOp op) { }

    /// <inheritdoc />
    public void AllReduce(Span<double> data, ReduceOp op) { }

    /// <inheritdoc />
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        if (root != 0) throw new TpLlmException($"broadcast root {root} outside a group of 1 rank");
    }

    /// <inheritdoc />
    public void Barrier() { }

    /// <inheritdoc />
    public ICommunicator Split(int color, int key) => new SingleRankCommunicator();

    /// <inheritdoc />
    public void Abort(Exception cause) { }

    /// <inheritdoc />
    public void Dispose() { }

    private static void Check(int sent, ReadOnlySpan<int> counts)
    {
        if (counts.Length != 1 || counts[0] != sent)
            throw new TpLlmException($"all-gather on 1 rank: sent {sent} elements but counts are [{string.Join(", ", counts.ToArray())}]");
    }
}
