using TpLlm.Parallel;

namespace TpLlm.Sampling;

/// <summary>
/// The vocabulary ids <c>[Start, Start + Count)</c> a rank's logits hold, in rows of <see cref="Stride"/> floats: its shard
/// <c>[V_pad/tp]</c> of the column-parallel head's output, or gathered rows <c>[V]</c> (start 0). Ids past the samplable
/// vocabulary are outside every slice, so no processor touches them.
/// </summary>
public readonly record struct VocabSlice
{
    /// <summary>First id of the slice.</summary>
    public int Start { get; }

    /// <summary>Ids in the slice (≤ <see cref="Stride"/>).</summary>
    public int Count { get; }

    /// <summary>Floats per row of logits.</summary>
    public int Stride { get; }

    /// <summary>The ids <c>[start, start + count)</c> in rows of <paramref name="stride"/>.</summary>
    public VocabSlice(int start, int count, int stride)
    {
        if (count > stride) throw new TpLlmException($"a slice of {count} ids does not fit rows of {stride}");
        Start = start;
        Count = Math.Max(count, 0);
        Stride = stride;
    }

    /// <summary>Rank <paramref name="rank"/>'s shard of <paramref name="partition"/>: its ids below <paramref name="samplableVocab"/>, in rows of <c>V_pad/tp</c>.</summary>
    public static VocabSlice ForShard(VocabPartition partition, int rank, int samplableVocab) =>
        new(partition.Start(rank), partition.SamplableRows(rank, samplableVocab), partition.ShardSize);

    /// <summary>Gathered rows of <paramref name="vocabSize"/> logits, of which the first <paramref name="samplableVocab"/> may be picked.</summary>
    public static VocabSlice Whole(int vocabSize, int samplableVocab) => new(0, Math.Min(samplableVocab, vocabSize), vocabSize);

    /// <summary>Whether <paramref name="id"/> is in the slice, and its column.</summary>
    public bool Owns(int id, out int column)
    {
        column = id - Start;
        return column >= 0 && column < Count;
    }
}
