namespace TpLlm.Distributed;

/// <summary>Calls and bytes of one kind of collective, as seen by one rank.</summary>
public sealed class CollectiveStats
{
    /// <summary>Number of calls.</summary>
    public long Calls { get; internal set; }

    /// <summary>
    /// Bytes this rank contributed to the collective (what it sends into it): its send buffer for
    /// gathers, its data for reductions, the data at the root for broadcasts.
    /// </summary>
    public long BytesSent { get; internal set; }

    /// <summary>Bytes this rank received out of the collective.</summary>
    public long BytesReceived { get; internal set; }

    /// <inheritdoc />
    public override string ToString() => $"{Calls} calls, {BytesSent} B sent, {BytesReceived} B received";
}
