namespace TpLlm.Parallel;

/// <summary>
/// The only place padding math lives. The vocabulary of <see cref="VocabSize"/> rows is padded
/// to <see cref="PaddedVocabSize"/> = roundUp(V, tp · align) and split into <see cref="TpSize"/>
/// equal shards of <see cref="ShardSize"/> rows; rows ≥ V are padding (zero weights, masked
/// logits). Padding is computed from the same group size the shards are cut for.
/// <code>
///   V = 10, tp = 1, align = 4 → V_pad = 12
///   rank 0: [ 0 1 2 3 4 5 6 7 8 9 | p p ]
///
///   V = 10, tp = 2, align = 4 → V_pad = 16, shard 8
///   rank 0: [ 0 1 2 3 4 5 6 7 ]
///   rank 1: [ 8 9 | p p p p p p ]
///
///   V = 2, tp = 3, align = 1 → V_pad = 3, shard 1: rank 2 holds only padding
/// </code>
/// </summary>
public sealed class VocabPartition
{
    /// <summary>Real vocabulary size V.</summary>
    public int VocabSize { get; }

    /// <summary>Number of shards (the tensor-parallel group size).</summary>
    public int TpSize { get; }

    /// <summary>Shard-size alignment.</summary>
    public int Align { get; }

    /// <summary>V rounded up to a multiple of tp · align.</summary>
    public int PaddedVocabSize { get; }

    /// <summary>Rows per rank: V_pad / tp.</summary>
    public int ShardSize { get; }

    /// <summary>Validates and computes the partition.</summary>
    /// <exception cref="TpLlmException">V, tp or align below 1, or V_pad beyond the int range.</exception>
    public VocabPartition(int vocabSize, int tpSize, int align = 1)
    {
        if (vocabSize < 1) throw new TpLlmException($"vocab size V = {vocabSize}, must be ≥ 1");
        if (tpSize < 1) throw new TpLlmException($"tensor-parallel size tp = {tpSize}, must be ≥ 1");
        if (align < 1) throw new TpLlmException($"vocab padding align = {align}, must be ≥ 1");
        long multiple = (long)tpSize * align;
        long padded = (vocabSize + multiple - 1) / multiple * multiple;
        if (padded > int.MaxValue)
            throw new TpLlmException($"padded vocab roundUp({vocabSize}, {tpSize} × {align}) = {padded} exceeds {int.MaxValue}");
        VocabSize = vocabSize;
        TpSize = tpSize;
        Align = align;
        PaddedVocabSize = (int)padded;
        ShardSize = (int)(padded / tpSize);
    }

    /// <summary>First row of rank <paramref name="rank"/>'s shard.</summary>
    public int Start(int rank) => CheckRank(rank) * ShardSize;

    /// <summary>End (exclusive) of rank <paramref name="rank"/>'s shard, padding included.</summary>
    public int End(int rank) => Start(rank) + ShardSize;

    /// <summary>End (exclusive) of the real rows of rank <paramref name="rank"/>: min(End, V), never below Start.</summary>
    public int RealEnd(int rank) => Math.Max(Start(rank), Math.Min(End(rank), VocabSize));

    /// <summary>How many of the rank's rows are real (the rest are padding).</summary>
    public int RealRows(int rank) => RealEnd(rank) - Start(rank);

    /// <summary>
    /// How many of rank <paramref name="rank"/>'s rows may be sampled: its real rows below
    /// <paramref name="samplableVocab"/> (min of V and the tokenizer's vocab), 0 … <see cref="ShardSize"/>.
    /// </summary>
    public int SamplableRows(int rank, int samplableVocab) =>
        Math.Clamp(Math.Min(samplableVocab, VocabSize) - Start(rank), 0, ShardSize);

    /// <summary>The rank owning vocabulary id <paramref name="id"/>.</summary>
    public int RankOf(int id) =>
        id >= 0 && id < PaddedVocabSize ? id / ShardSize : throw new TpLlmException($"token id {id} outside the padded vocab [0, {PaddedVocabSize})");

    private int CheckRank(int rank) =>
        rank >= 0 && rank < TpSize ? rank : throw new TpLlmException($"rank {rank} outside a tensor-parallel group of {TpSize}");

    /// <inheritdoc />
    public override string ToString() => $"V={VocabSize} tp={TpSize} align={Align} V_pad={PaddedVocabSize} shard={ShardSize}";
}
