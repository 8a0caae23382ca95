using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace TpLlm.Distributed.Mpi;

/// <summary>
/// A group of MPI processes (Open MPI through <c>libmpi.so.40</c>). Gathers move bytes
/// (<c>MPI_BYTE</c>); reductions use <c>MPI_FLOAT</c>/<c>MPI_DOUBLE</c> with <c>MPI_SUM</c>/<c>MPI_MAX</c>
/// in place. A watchdog ends the whole job (MPI_Abort) when a collective waits longer than
/// <see cref="Timeout"/>, so a rank stuck elsewhere cannot hang the others.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private readonly nint _comm;
    private readonly bool _owned;
    private int[] _counts = [], _displs = [];
    private long _enteredAt; // Stopwatch timestamp while inside a collective, 0 otherwise
    private string _current = "";
    private readonly Thread _watchdog;
    private volatile bool _disposed;

    /// <summary>How long a collective may wait before the job is aborted.</summary>
    public TimeSpan Timeout { get; set; } = ThreadRanks.DefaultTimeout;

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size { get; }

    internal MpiCommunicator(nint comm, bool owned)
    {
        _comm = comm;
        _owned = owned;
        int r, s;
        MpiNative.Check(MpiNative.CommSetErrhandler(comm, MpiNative.ErrorsReturn), "MPI_Comm_set_errhandler"); // errors come back as codes, not aborts without a message
        MpiNative.Check(MpiNative.CommRank(comm, &r), "MPI_Comm_rank");
        MpiNative.Check(MpiNative.CommSize(comm, &s), "MPI_Comm_size");
        Rank = r;
        Size = s;
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "tpllm-mpi-watchdog" };
        _watchdog.Start();
    }

    private void Watch()
    {
        while (!_disposed)
        {
            Thread.Sleep(500);
            long t = Volatile.Read(ref _enteredAt);
            if (t != 0 && Stopwatch.GetElapsedTime(t) > Timeout)
            {
                IO.StdStreams.Err.WriteLine($"error: {_current}: rank {Rank} of {Size} waited {Timeout.TotalSeconds:0.#} s for the other ranks (collective timeout); aborting the job");
                MpiRuntime.AbortAll(3);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Enter(string what)
    {
        _current = what;
        Volatile.Write(ref _enteredAt, Stopwatch.GetTimestamp());
    }

    private void Leave(int rc, string what)
    {
        Volatile.Write(ref _enteredAt, 0);
        MpiNative.Check(rc, what);
    }

    private void Layout<T>(ReadOnlySpan<int> counts, int sent, string what) where T : unmanaged
    {
        if (counts.Length != Size) throw new TpLlmException($"{what}: {counts.Length} counts for a group of {Size} ranks");
        if (counts[Rank] != sent) throw new TpLlmException($"{what}: rank {Rank} sends {sent} elements but counts[{Rank}] = {counts[Rank]}");
        if (_counts.Length != Size) { _counts = new int[Size]; _displs = new int[Size]; }
        long off = 0;
        for (int r = 0; r < Size; r++)
        {
            long bytes = (long)counts[r] * sizeof(T);
            if (off + bytes > int.MaxValue) throw new TpLlmException($"{what}: {off + bytes} bytes exceed MPI's int counts");
            _counts[r] = (int)bytes;
            _displs[r] = (int)off;
            off += bytes;
        }
    }

    /// <inheritdoc />
    public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged
    {
        Layout<T>(counts, send.Length, "all-gather");
        fixed (T* s = send) fixed (T* r = recv) fixed (int* c = _counts) fixed (int* d = _displs)
        {
            Enter("all-gather");
            Leave(MpiNative.Allgatherv(s, send.Length * sizeof(T), MpiNative.Byte, r, c, d, MpiNative.Byte, _comm), "MPI_Allgatherv");
        }
    }

    /// <inheritdoc />
    public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged
    {
        Layout<T>(counts, send.Length, "gather");
        fixed (T* s = send) fixed (T* r = recv) fixed (int* c = _counts) fixed (int* d = _displs)
        {
            Enter("gather");
            Leave(MpiNative.Gatherv(s, send.Length * sizeof(T), MpiNative.Byte, r, c, d, MpiNative.Byte, root, _comm), "MPI_Gatherv");
        }
    }

    /// <inheritdoc />
    public void AllReduce(Span<float> data, ReduceOp op)
    {
        fixed (float* p = data)
        {
            Enter("all-reduce");
            Leave(MpiNative.Allreduce((void*)MpiNative.InPlace, p, data.Length, MpiNative.Float, op == ReduceOp.Sum ? MpiNative.OpSum : MpiNative.OpMax, _comm), "MPI_Allreduce");
        }
    }

    /// <inheritdoc />
    public void AllReduce(Span<double> data, ReduceOp op)
    {
        fixed (double* p = data)
        {
            Enter("all-reduce");
            Leave(MpiNative.Allreduce((void*)MpiNative.InPlace, p, data.Length, MpiNative.Double, op == ReduceOp.Sum ? MpiNative.OpSum : MpiNative.OpMax, _comm), "MPI_Allreduce");
        }
    }

    /// <inheritdoc />
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        fixed (T* p = data)
        {
            Enter("broadcast");
            Leave(MpiNative.Bcast(p, data.Length * sizeof(T), MpiNative.Byte, root, _comm), "MPI_Bcast");
        }
    }

    /// <inheritdoc />
    public void Barrier()
    {
        Enter("barrier");
        Leave(MpiNative.Barrier(_comm), "MPI_Barrier");
    }

    /// <inheritdoc />
    public ICommunicator Split(int color, int key)
    {
        nint sub;
        Enter("split");
        Leave(MpiNative.CommSplit(_comm, color, key, &sub), "MPI_Comm_split");
        return new MpiCommunicator(sub, owned: true) { Timeout = Timeout };
    }

    /// <summary>Ends every process of the job: over MPI, one failed rank cannot be survived.</summary>
    public void Abort(Exception cause)
    {
        IO.StdStreams.Err.WriteLine($"error: rank {Rank} failed: {cause.Message}");
        MpiRuntime.AbortAll(1);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _disposed = true;
        if (_owned)
        {
            nint c = _comm;
            MpiNative.CommFree(&c);
        }
    }
}
