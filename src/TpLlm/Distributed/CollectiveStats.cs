namespace TpLlm.Distributed;

/// <summary>Calls and bytes of one kind of collective, as seen by one rank.</summary>
public sealed class CollectiveStats
{
    /// <summary>Number of calls.</summary>
    public long Calls { get; internal set; }

    /// <summary>
    /// Bytes of this rank's data that other ranks receive: its contribution times (size − 1) for an
    /// all-gather, its part for a gather (non-root), n·(size − 1) at a broadcast root, and
    /// 2·(size − 1)/size·n for an all-reduce (the ring algorithm's traffic).
    /// </summary>
    public long BytesSent { get; internal set; }

    /// <summary>Bytes this rank receives from other ranks (zero in a group of one).</summary>
    public long BytesReceived { get; internal set; }

    /// <inheritdoc />
    public override string ToString() => $"{Calls} calls, {BytesSent} B sent, {BytesReceived} B received";
}
