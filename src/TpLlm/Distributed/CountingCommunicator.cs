using System.Runtime.CompilerServices;

namespace TpLlm.Distributed;

/// <summary>Wraps a communicator and counts calls and bytes per collective (for tests and benchmarks).</summary>
public sealed class CountingCommunicator : ICommunicator
{
    private readonly ICommunicator _inner;

    /// <summary>All-gather statistics.</summary>
    public CollectiveStats AllGathers { get; } = new();

    /// <summary>Gather-to-root statistics.</summary>
    public CollectiveStats Gathers { get; } = new();

    /// <summary>All-reduce statistics.</summary>
    public CollectiveStats AllReduces { get; } = new();

    /// <summary>Broadcast statistics.</summary>
    public CollectiveStats Broadcasts { get; } = new();

    /// <summary>Barrier statistics.</summary>
    public CollectiveStats Barriers { get; } = new();

    /// <summary>Bytes this rank contributed to all collectives.</summary>
    public long TotalBytesSent => AllGathers.BytesSent + Gathers.BytesSent + AllReduces.BytesSent + Broadcasts.BytesSent;

    /// <summary>Bytes this rank received from all collectives.</summary>
    public long TotalBytesReceived => AllGathers.BytesReceived + Gathers.BytesReceived + AllReduces.BytesReceived + Broadcasts.BytesReceived;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public CountingCommunicator(ICommunicator inner) => _inner = inner;

    /// <inheritdoc />
    public int Rank => _inner.Rank;

    /// <inheritdoc />
    public int Size => _inner.Size;

    /// <summary>Zeroes every counter.</summary>
    public void Reset()
    {
        foreach (var s in new[] { AllGathers, Gathers, AllReduces, Broadcasts, Barriers })
            s.Calls = s.BytesSent = s.BytesReceived = 0;
    }

    /// <inheritdoc />
    public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged
    {
        _inner.AllGatherV(send, recv, counts);
        Add(AllGathers, (long)send.Length * Unsafe.SizeOf<T>() * (Size - 1), (Sum(counts) - send.Length) * Unsafe.SizeOf<T>());
    }

    /// <inheritdoc />
    public void AllGatherColumns<T>(Span<T> buffer, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts) where T : unmanaged
    {
        _inner.AllGatherColumns(buffer, rows, ld, offsets, counts);
        long own = (long)rows * counts[Rank] * Unsafe.SizeOf<T>();
        Add(AllGathers, own * (Size - 1), (long)rows * Sum(counts) * Unsafe.SizeOf<T>() - own);
    }

    /// <inheritdoc />
    public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged
    {
        _inner.GatherV(send, recv, counts, root);
        Add(Gathers, Rank == root ? 0 : send.Length * Unsafe.SizeOf<T>(), Rank == root ? (Sum(counts) - send.Length) * Unsafe.SizeOf<T>() : 0);
    }

    /// <inheritdoc />
    public void AllReduce(Span<float> data, ReduceOp op)
    {
        _inner.AllReduce(data, op);
        long ring = Ring(data.Length * 4L);
        Add(AllReduces, ring, ring);
    }

    /// <inheritdoc />
    public void AllReduce(Span<double> data, ReduceOp op)
    {
        _inner.AllReduce(data, op);
        long ring = Ring(data.Length * 8L);
        Add(AllReduces, ring, ring);
    }

    /// <inheritdoc />
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        _inner.Broadcast(data, root);
        long bytes = data.Length * (long)Unsafe.SizeOf<T>();
        Add(Broadcasts, Rank == root ? bytes * (Size - 1) : 0, Rank == root ? 0 : bytes);
    }

    /// <inheritdoc />
    public void Barrier()
    {
        _inner.Barrier();
        Add(Barriers, 0, 0);
    }

    /// <inheritdoc />
    public ICommunicator Split(int color, int key) => new CountingCommunicator(_inner.Split(color, key));

    /// <inheritdoc />
    public void Abort(Exception cause) => _inner.Abort(cause);

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();

    private long Ring(long bytes) => 2 * (Size - 1) * bytes / Size;

    private static long Sum(ReadOnlySpan<int> counts)
    {
        long s = 0;
        foreach (var c in counts) s += c;
        return s;
    }

    private static void Add(CollectiveStats s, long sent, long received)
    {
        s.Calls++;
        s.BytesSent += sent;
        s.BytesReceived += received;
    }
}
