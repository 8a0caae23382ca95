namespace TpLlm.Distributed;

/// <summary>
/// A group of ranks and the collectives they call together. Every rank of the group must make
/// the same calls in the same order with consistent sizes; a mismatch, a timeout or a failure on
/// any rank ends the collective on every rank with an exception naming the failing rank.
/// Buffers are laid out rank-major: rank r's contribution follows ranks 0..r-1.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This rank's index in [0, Size).</summary>
    int Rank { get; }

    /// <summary>Number of ranks in the group.</summary>
    int Size { get; }

    /// <summary>
    /// All-gather with per-rank sizes: rank r sends <c>counts[r]</c> elements; every rank receives
    /// all of them concatenated in rank order into <paramref name="recv"/> (Σ counts elements).
    /// </summary>
    void AllGatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged;

    /// <summary>Like <see cref="AllGatherV{T}"/>, but only <paramref name="root"/> receives; other ranks may pass an empty <paramref name="recv"/>.</summary>
    void GatherV<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts, int root) where T : unmanaged;

    /// <summary>
    /// In-place all-gather of column blocks: <paramref name="buffer"/> is <c>[rows, ld]</c> on every rank, and rank r has
    /// filled columns <c>[offsets[r], offsets[r] + counts[r])</c> of every row; afterwards every rank's buffer holds every
    /// rank's block. For a column-parallel layer's output it saves gathering rank-major and reordering. This default packs
    /// the own block, all-gathers and unpacks (pooled buffers); in-process ranks copy the blocks straight across.
    /// </summary>
    void AllGatherColumns<T>(Span<T> buffer, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts) where T : unmanaged
    {
        ColumnBlocks.Check(Size, buffer.Length, rows, ld, offsets, counts);
        int total = 0;
        foreach (int c in counts) total += c;
        var pool = System.Buffers.ArrayPool<T>.Shared;
        T[] send = pool.Rent(Math.Max(1, rows * counts[Rank])), recv = pool.Rent(Math.Max(1, rows * total));
        var sendCounts = System.Buffers.ArrayPool<int>.Shared.Rent(Size);
        try
        {
            ColumnBlocks.Pack(buffer, rows, ld, offsets[Rank], counts[Rank], send);
            for (int r = 0; r < Size; r++) sendCounts[r] = rows * counts[r];
            AllGatherV<T>(send.AsSpan(0, rows * counts[Rank]), recv.AsSpan(0, rows * total), sendCounts.AsSpan(0, Size));
            ColumnBlocks.Unpack(recv, buffer, rows, ld, offsets, counts, Rank);
        }
        finally
        {
            pool.Return(send);
            pool.Return(recv);
            System.Buffers.ArrayPool<int>.Shared.Return(sendCounts);
        }
    }

    /// <summary>Element-wise reduction across ranks, in place; every rank gets the result.</summary>
    void AllReduce(Span<float> data, ReduceOp op);

    /// <summary>Element-wise reduction across ranks in double precision, in place.</summary>
    void AllReduce(Span<double> data, ReduceOp op);

    /// <summary>Copies <paramref name="data"/> of <paramref name="root"/> to every rank.</summary>
    void Broadcast<T>(Span<T> data, int root) where T : unmanaged;

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>
    /// Splits the group: ranks with the same <paramref name="color"/> form a new group, ordered by
    /// <paramref name="key"/> then by rank (like <c>MPI_Comm_split</c>). Every rank must call it.
    /// </summary>
    ICommunicator Split(int color, int key);

    /// <summary>Marks this rank failed: every rank blocked in or entering a collective throws.</summary>
    void Abort(Exception cause);
}
