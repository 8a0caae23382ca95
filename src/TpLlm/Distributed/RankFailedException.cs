namespace TpLlm.Distributed;

/// <summary>A rank of the group failed; carries the failing rank and its original message.</summary>
public sealed class RankFailedException : TpLlmException
{
    /// <summary>The rank whose error ended the group.</summary>
    public int FailedRank { get; }

    /// <summary>Creates the exception for <paramref name="rank"/> failing with <paramref name="cause"/>.</summary>
    public RankFailedException(int rank, Exception cause)
        : base($"rank {rank} failed: {cause.Message}", cause) => FailedRank = rank;
}
