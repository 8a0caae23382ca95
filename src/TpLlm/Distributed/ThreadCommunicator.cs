using System.Numerics;
using System.Runtime.CompilerServices;

namespace TpLlm.Distributed;

/// <summary>
/// One rank of a group of in-process ranks (threads sharing memory). Collectives publish a
/// pinned pointer per rank, meet at a spin barrier, copy or reduce directly from the other
/// ranks' buffers, and meet again. Create a world with <see cref="ThreadRanks"/>.
/// </summary>
public sealed unsafe class ThreadCommunicator : ICommunicator
{
    private const int OpGather = 1, OpReduceF = 2, OpReduceD = 3, OpBroadcast = 4, OpBarrier = 5, OpSplit = 6, OpGatherColumns = 7;
    private readonly ThreadGroup _g;
    private int _sense;

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size => _g.Size;

    internal ThreadCommunicator(ThreadGroup group, int rank)
    {
        _g = group;
        Rank = rank;
    }

    /// <inheritdoc />
    public void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged =>
        Gather(send, recv, counts, -1, "all-gather");

    /// <inheritdoc />
    public void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged
    {
        CheckRoot(root, "gather");
        Gather(send, recv, counts, root, "gather");
    }

    private void Gather<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root, string what) where T : unmanaged
    {
        if (counts.Length != Size) Throw($"{what}: {counts.Length} counts for a group of {Size} ranks");
        long total = 0;
        for (int r = 0; r < Size; r++) total += counts[r];
        bool receives = root < 0 || root == Rank;
        if (receives && recv.Length < total) Throw($"{what}: receive buffer holds {recv.Length} elements, the ranks send {total}");
        fixed (T* ps = send)
        fixed (T* pr = recv)
        {
            Publish(OpGather * 1000 + sizeof(T), (nint)ps, send.Length);
            Arrive(what);
            CheckSame(what);
            for (int r = 0; r < Size; r++)
                if (_g.Counts[r] != counts[r])
                    Throw($"{what}: rank {r} sent {_g.Counts[r]} elements but rank {Rank} expected counts[{r}] = {counts[r]}");
            if (receives)
            {
                long offset = 0;
                for (int r = 0; r < Size; r++)
                {
                    long bytes = counts[r] * (long)sizeof(T);
                    Buffer.MemoryCopy((void*)_g.Pointers[r], pr + offset, bytes, bytes);
                    offset += counts[r];
                }
            }
            Arrive(what);
        }
    }

    /// <inheritdoc />
    public void AllGatherColumns<T>(Span<T> buffer, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts) where T : unmanaged
    {
        const string what = "all-gather columns";
        try { ColumnBlocks.Check(Size, buffer.Length, rows, ld, offsets, counts); }
        catch (TpLlmException e) { Throw(e.Message); }
        fixed (T* p = buffer)
        {
            // every rank reads the other ranks' blocks straight from their buffers; no rank writes a block it does not own
            Publish(OpGatherColumns * 1000 + sizeof(T), (nint)p, ((long)rows << 32) | (uint)ld);
            Arrive(what);
            CheckSame(what);
            for (int r = 0; r < Size; r++)
                if (_g.Counts[r] != _g.Counts[Rank])
                    Throw($"{what}: rank {r} has a [{_g.Counts[r] >> 32}, {(int)_g.Counts[r]}] buffer but rank {Rank} has [{rows}, {ld}]");
            for (int r = 0; r < Size; r++)
            {
                if (r == Rank || counts[r] == 0) continue;
                T* src = (T*)_g.Pointers[r] + offsets[r];
                long bytes = counts[r] * (long)sizeof(T);
                for (long t = 0; t < rows; t++) Buffer.MemoryCopy(src + t * ld, p + t * ld + offsets[r], bytes, bytes);
            }
            Arrive(what);
        }
    }

    /// <inheritdoc />
    public void AllReduce(Span<float> data, ReduceOp op) => Reduce(data, op, OpReduceF, ref _g.ScratchF);

    /// <inheritdoc />
    public void AllReduce(Span<double> data, ReduceOp op) => Reduce(data, op, OpReduceD, ref _g.ScratchD);

    // Every rank reduces its chunk of the vector, reading all ranks' buffers, into the shared
    // scratch; after the second barrier each copies the result back.
    private void Reduce<T>(Span<T> data, ReduceOp op, int opCode, ref T[] shared) where T : unmanaged, INumber<T>
    {
        fixed (T* p = data)
        {
            if (Rank == 0 && shared.Length < data.Length) shared = new T[data.Length];
            Publish(opCode * 10 + (int)op, (nint)p, data.Length);
            Arrive("all-reduce");
            CheckSame("all-reduce");
            var scratch = shared;
            var (lo, hi) = Chunk(data.Length);
            for (int i = lo; i < hi; i++)
            {
                T acc = ((T*)_g.Pointers[0])[i];
                for (int r = 1; r < Size; r++)
                {
                    T v = ((T*)_g.Pointers[r])[i];
                    acc = op == ReduceOp.Sum ? acc + v : T.MaxNumber(acc, v);
                }
                scratch[i] = acc;
            }
            Arrive("all-reduce");
            scratch.AsSpan(0, data.Length).CopyTo(data);
        }
    }

    /// <inheritdoc />
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        CheckRoot(root, "broadcast");
        fixed (T* p = data)
        {
            Publish(OpBroadcast * 1000 + sizeof(T), (nint)p, data.Length);
            Arrive("broadcast");
            CheckSame("broadcast");
            if (Rank != root)
            {
                long bytes = data.Length * (long)sizeof(T);
                Buffer.MemoryCopy((void*)_g.Pointers[root], p, bytes, bytes);
            }
            Arrive("broadcast");
        }
    }

    /// <inheritdoc />
    public void Barrier()
    {
        Publish(OpBarrier, 0, 0);
        Arrive("barrier");
        CheckSame("barrier");
        Arrive("barrier"); // no rank may publish its next collective before every rank has checked this one
    }

    /// <inheritdoc />
    public ICommunicator Split(int color, int key)
    {
        Publish(OpSplit, 0, ((long)color << 32) | (uint)key);
        Arrive("split");
        CheckSame("split");
        var members = Enumerable.Range(0, Size)
            .Where(r => (int)(_g.Counts[r] >> 32) == color)
            .OrderBy(r => (int)_g.Counts[r]).ThenBy(r => r).ToArray();
        int leader = members.Min();
        if (leader == Rank)
            _g.Slots[Rank] = new ThreadGroup(members.Select(m => _g.WorldRanks[m]).ToArray(), _g.Failure, _g.Timeout);
        Arrive("split");
        var group = (ThreadGroup)_g.Slots[leader]!;
        var comm = new ThreadCommunicator(group, Array.IndexOf(members, Rank));
        Arrive("split");
        if (leader == Rank) _g.Slots[Rank] = null;
        return comm;
    }

    /// <inheritdoc />
    public void Abort(Exception cause) => _g.Fail(Rank, cause);

    /// <inheritdoc />
    public void Dispose() { }

    private (int, int) Chunk(int n) => ((int)((long)n * Rank / Size), (int)((long)n * (Rank + 1) / Size));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Publish(int op, nint pointer, long count)
    {
        _g.Ops[Rank] = op;
        _g.Pointers[Rank] = pointer;
        _g.Counts[Rank] = count;
    }

    private void Arrive(string what) => _g.Arrive(ref _sense, Rank, what);

    private void CheckSame(string what)
    {
        for (int r = 0; r < Size; r++)
            if (_g.Ops[r] != _g.Ops[Rank])
                Throw($"{what}: rank {r} is in a different collective or element type (op {_g.Ops[r]} vs {_g.Ops[Rank]} on rank {Rank})");
        if (_g.Ops[Rank] / 10 is OpReduceF or OpReduceD)
            for (int r = 0; r < Size; r++)
                if (_g.Counts[r] != _g.Counts[Rank])
                    Throw($"{what}: rank {r} reduces {_g.Counts[r]} elements but rank {Rank} reduces {_g.Counts[Rank]}");
        if (_g.Ops[Rank] / 1000 == OpBroadcast)
            for (int r = 0; r < Size; r++)
                if (_g.Counts[r] != _g.Counts[Rank])
                    Throw($"{what}: rank {r} broadcasts {_g.Counts[r]} elements but rank {Rank} expects {_g.Counts[Rank]}");
    }

    private void CheckRoot(int root, string what)
    {
        if (root < 0 || root >= Size) Throw($"{what}: root {root} outside a group of {Size} ranks");
    }

    private void Throw(string message)
    {
        var e = new TpLlmException(message);
        _g.Fail(Rank, e);
        throw e;
    }
}
