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
