namespace TpLlm.Distributed;

/// <summary>
/// The first failure of a world of in-process ranks, shared by the world and every group split
/// from it, so an error anywhere ends every rank's collectives.
/// </summary>
internal sealed class FailureState
{
    private Exception? _first;
    private int _rank = -1;

    public Exception? First => Volatile.Read(ref _first);

    public int Rank => _rank;

    /// <summary>Records <paramref name="cause"/> on <paramref name="worldRank"/> unless a failure is already recorded.</summary>
    public void Fail(int worldRank, Exception cause)
    {
        if (cause is RankFailedException) return; // a consequence, not a cause
        if (Interlocked.CompareExchange(ref _first, cause, null) == null) _rank = worldRank;
    }

    public RankFailedException ToException() => new(_rank, First!);
}
