namespace TpLlm.Distributed;

/// <summary>
/// A communicator that fails its rank at the first float all-reduce, for tests of how a failure on one rank ends every
/// rank: by throwing (a kernel that failed while the others wait in the collective), or by reducing 3 values instead
/// (a collective the others do not make). Everything else passes through.
/// </summary>
public sealed class FaultInjectingCommunicator(ICommunicator inner, bool throwInstead) : ICommunicator
{
    private bool _fired;

    /// <inheritdoc />
    public int Rank => inner.Rank;

    /// <inheritdoc />
    public int Size => inner.Size;

    /// <inheritdoc />
    public void AllReduce(Span<float> data, ReduceOp op)
    {
        if (!_fired)
        {
            _fired = true;
            if (throwInstead) throw new InvalidOperationException($"kernel failure on rank {Rank} (injected fault)");
            inner.AllReduce(new float[3], op);
            return;
        }
        inner.AllReduce(data, op);
    }

    /// <inheritdoc />
    public void AllReduce(Span<double> data, ReduceOp op) => inner.AllReduce(data, op);

    /// <inheritdoc />
    public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged => inner.AllGatherV(send, recv, counts);

    /// <inheritdoc />
    public void AllGatherColumns<T>(Span<T> buffer, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts) where T : unmanaged =>
        inner.AllGatherColumns(buffer, rows, ld, offsets, counts);

    /// <inheritdoc />
    public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged => inner.GatherV(send, recv, counts, root);

    /// <inheritdoc />
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged => inner.Broadcast(data, root);

    /// <inheritdoc />
    public void Barrier() => inner.Barrier();

    /// <inheritdoc />
    public ICommunicator Split(int color, int key) => inner.Split(color, key);

    /// <inheritdoc />
    public void Abort(Exception cause) => inner.Abort(cause);

    /// <inheritdoc />
    public void Dispose() => inner.Dispose();
}
