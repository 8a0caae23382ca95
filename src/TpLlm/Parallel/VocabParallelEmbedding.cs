using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// Token embedding with the vocabulary split like the LM head: rank r holds rows
/// <c>[start_r, start_r + V_pad/tp)</c>; a lookup writes the row for ids the rank owns and zeros
/// otherwise, then an all-reduce(sum) gives every rank the full <c>[T, H]</c>. With tied
/// embeddings the same <see cref="WeightMatrix"/> shard serves the LM head — one copy per rank.
/// </summary>
public sealed class VocabParallelEmbedding
{
    private readonly ICommunicator _comm;

    /// <summary>This rank's rows <c>[V_pad/tp, H]</c>.</summary>
    public WeightMatrix Weight { get; }

    /// <summary>The vocabulary split.</summary>
    public VocabPartition Partition { get; }

    /// <summary>Wraps a shard.</summary>
    public VocabParallelEmbedding(WeightMatrix weight, VocabPartition partition, ICommunicator comm)
    {
        if (weight.Rows != partition.ShardSize)
            throw new TpLlmException($"embedding shard has {weight.Rows} rows, partition {partition} needs {partition.ShardSize}");
        Weight = weight;
        Partition = partition;
        _comm = comm;
    }

    /// <summary><paramref name="ids"/> <c>[T]</c> → <paramref name="output"/> <c>[T, H]</c> on every rank.</summary>
    public void Forward(ReadOnlySpan<int> ids, Span<float> output)
    {
        int H = Weight.Cols, T = ids.Length;
        int start = Partition.Start(_comm.Rank), end = Partition.RealEnd(_comm.Rank);
        for (int t = 0; t < T; t++)
        {
            int id = ids[t];
            if ((uint)id >= (uint)Partition.VocabSize)
                throw new TpLlmException($"token id {id} at position {t} is outside the vocabulary [0, {Partition.VocabSize})");
            var dst = output.Slice(t * H, H);
            if (id >= start && id < end) Weight.RowToF32(id - start, dst);
            else dst.Clear();
        }
        _comm.AllReduce(output[..(T * H)], ReduceOp.Sum);
    }
}
