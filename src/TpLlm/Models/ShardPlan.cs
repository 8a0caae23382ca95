using TpLlm.Parallel;

namespace TpLlm.Models;

/// <summary>
/// What one rank of a tensor-parallel group holds. Query heads and MLP columns are split as
/// evenly as possible in contiguous ranges (any tp from 1 to the head count); the rank holds
/// every KV head its query heads read, so KV heads are replicated when ranks share one. With a
/// quantized format, MLP columns — the down projection's input — are split in whole groups of the
/// format's scale, so each rank's range starts on a group boundary.
/// </summary>
public sealed record ShardPlan
{
    /// <summary>Rank in the group.</summary>
    public required int Rank { get; init; }
    /// <summary>Group size.</summary>
    public required int TpSize { get; init; }
    /// <summary>First query head.</summary>
    public required int HeadStart { get; init; }
    /// <summary>Query heads on this rank.</summary>
    public required int HeadCount { get; init; }
    /// <summary>First KV head.</summary>
    public required int KvHeadStart { get; init; }
    /// <summary>KV heads on this rank.</summary>
    public required int KvHeadCount { get; init; }
    /// <summary>First MLP column.</summary>
    public required int MlpStart { get; init; }
    /// <summary>MLP columns on this rank.</summary>
    public required int MlpCount { get; init; }
    /// <summary>The vocabulary split of the embedding and LM head.</summary>
    public required VocabPartition Vocab { get; init; }

    /// <summary>
    /// Plans rank <paramref name="rank"/> of <paramref name="tp"/> for <paramref name="config"/>; MLP columns go in whole
    /// groups of <paramref name="kGroup"/> (the quantized format's <see cref="Tensors.IWeightFormat.GroupSize"/>).
    /// </summary>
    /// <exception cref="TpLlmException">tp below 1 or above the number of attention heads, or above the MLP's groups.</exception>
    public static ShardPlan For(ModelConfig config, int tp, int rank, int vocabAlign = 1, int kGroup = 1)
    {
        if (tp < 1 || tp > config.NumHeads)
            throw new InvalidRequestException("tp", $"{{field}} {tp} is outside [1, {config.NumHeads}]: the model has {config.NumHeads} attention heads to split");
        int mlpGroups = (config.IntermediateSize + kGroup - 1) / kGroup;
        if (tp > mlpGroups)
            throw new InvalidRequestException("tp", kGroup == 1 ? $"{{field}} {tp} exceeds intermediate_size {config.IntermediateSize}"
                : $"{{field}} {tp} exceeds the {mlpGroups} groups of {kGroup} columns of intermediate_size {config.IntermediateSize} (each rank takes whole groups)");
        var (h0, nh) = BalancedSplit.Of(config.NumHeads, tp, rank);
        int group = config.NumHeads / config.NumKvHeads;
        int kv0 = h0 / group, kv1 = (h0 + nh - 1) / group;
        var (m0, nm) = BalancedSplit.OfGroups(config.IntermediateSize, kGroup, tp, rank);
        return new ShardPlan
        {
            Rank = rank, TpSize = tp, HeadStart = h0, HeadCount = nh, KvHeadStart = kv0, KvHeadCount = kv1 - kv0 + 1,
            MlpStart = m0, MlpCount = nm, Vocab = new VocabPartition(config.VocabSize, tp, vocabAlign),
        };
    }
}
