namespace TpLlm.Distributed;

/// <summary>Equal-size collectives built on the variable-size ones, and group splitting helpers.</summary>
public static class CommunicatorExtensions
{
    /// <summary>All-gather of equal contributions: <paramref name="recv"/> is <c>[Size, send.Length]</c>.</summary>
    public static void AllGather<T>(this ICommunicator comm, ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged
    {
        Span<int> counts = stackalloc int[comm.Size];
        counts.Fill(send.Length);
        comm.AllGatherV(send, recv, counts);
    }

    /// <summary>Gather of equal contributions to <paramref name="root"/>.</summary>
    public static void Gather<T>(this ICommunicator comm, ReadOnlySpan<T> send, Span<T> recv, int root) where T : unmanaged
    {
        Span<int> counts = stackalloc int[comm.Size];
        counts.Fill(send.Length);
        comm.GatherV(send, recv, counts, root);
    }

    /// <summary>
    /// Splits a world of <c>dp × tp</c> ranks into <c>dp</c> tensor-parallel groups of consecutive
    /// ranks: world rank w belongs to replica <c>w / tp</c> with tp-rank <c>w % tp</c>.
    /// </summary>
    public static ICommunicator SplitTensorParallel(this ICommunicator world, int tp)
    {
        if (tp < 1 || world.Size % tp != 0)
            throw new InvalidRequestException("tp", $"{{field}} {tp} must be ≥ 1 and divide the world size {world.Size} (world = dp × tp)");
        return world.Split(world.Rank / tp, world.Rank % tp);
    }
}
