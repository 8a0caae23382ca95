using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// The column-parallel LM head: rank r holds vocabulary rows
/// <c>[r·V_pad/tp, (r+1)·V_pad/tp)</c> of <c>W</c> (padding rows zero) and computes complete
/// logits for its slice, <c>[T, V_pad/tp]</c>. <see cref="Forward"/> writes its slice straight into
/// the <c>[T, V]</c> logits (padding rows not computed) and all-gathers the other slices into place; <see cref="ForwardToRoot"/> gathers to one rank only; <see cref="ForwardLocal"/>
/// keeps the slice for vocab-parallel sampling. No bias.
/// </summary>
public sealed class ColumnParallelLmHead : IVocabParallelHead
{
    private readonly ICommunicator _comm;
    private readonly MatMul _mm;
    private readonly int[] _shardCounts;
    private float[] _local = [];     // [T, V_pad/tp]
    private float[] _gathered = [];  // [tp, T, V_pad/tp]
    private int[] _recv = [];
    private readonly int[] _offsets, _valid; // per rank: first vocabulary column, columns below V

    /// <inheritdoc />
    public LmHeadStrategy Strategy => LmHeadStrategy.ColumnParallel;

    /// <summary>The vocabulary split.</summary>
    public VocabPartition Partition { get; }

    /// <inheritdoc />
    public int VocabSize => Partition.VocabSize;

    /// <inheritdoc />
    public WeightMatrix Weight { get; }

    /// <summary>When set, logits are soft-capped: <c>cap · tanh(x / cap)</c> (elementwise, so each rank caps its own slice).</summary>
    public float? Softcap { get; init; }

    /// <summary>Wraps this rank's shard <paramref name="weight"/> <c>[V_pad/tp, H]</c>, multiplied by <paramref name="mm"/>'s kernels.</summary>
    public ColumnParallelLmHead(WeightMatrix weight, VocabPartition partition, ICommunicator comm, MatMul mm)
    {
        if (partition.TpSize != comm.Size)
            throw new TpLlmException($"vocab partition is for tp = {partition.TpSize} but the group has {comm.Size} ranks");
        if (weight.Rows != partition.ShardSize)
            throw new TpLlmException($"LM head shard has {weight.Rows} rows, partition {partition} needs {partition.ShardSize}");
        Weight = weight;
        Partition = partition;
        _comm = comm;
        _mm = mm;
        _shardCounts = Enumerable.Repeat(partition.ShardSize, comm.Size).ToArray();
        _offsets = new int[comm.Size];
        _valid = new int[comm.Size];
        for (int r = 0; r < comm.Size; r++)
        {
            _offsets[r] = Math.Min(partition.VocabSize, partition.Start(r)); // a rank wholly in the padding sends nothing from V on
            _valid[r] = partition.RealRows(r);
        }
    }

    /// <summary>This rank's logits <paramref name="local"/> <c>[T, V_pad/tp]</c> (padding columns are 0, not masked).</summary>
    public void ForwardLocal(ReadOnlySpan<float> hidden, int T, Span<float> local)
    {
        _mm.Run(hidden, T, Weight, local, Partition.ShardSize);
        if (Softcap is { } cap) Tensors.Softcap.Apply(local[..(T * Partition.ShardSize)], cap);
    }

    /// <inheritdoc />
    public void Forward(ReadOnlySpan<float> hidden, int T, Span<float> logits)
    {
        // logits [T, V]: this rank's columns computed in place, then the others copied in (one copy per logit, not three)
        int r = _comm.Rank, V = VocabSize;
        if (logits.Length < T * V) throw new ArgumentException($"logits hold {logits.Length} floats, [{T}, {V}] needs {T * V}");
        if (_valid[r] > 0)
        {
            _mm.Run(hidden, T, Weight, logits[_offsets[r]..], V, _valid[r]);
            if (Softcap is { } cap)
                for (int t = 0; t < T; t++) Tensors.Softcap.Apply(logits.Slice(t * V + _offsets[r], _valid[r]), cap);
        }
        _comm.AllGatherColumns(logits, T, V, _offsets, _valid);
    }

    /// <summary>Like <see cref="Forward"/>, but only <paramref name="root"/> receives (half the traffic of an all-gather).</summary>
    public void ForwardToRoot(ReadOnlySpan<float> hidden, int T, Span<float> logits, int root)
    {
        int shard = Partition.ShardSize;
        ColumnParallelLinear.Grow(ref _local, T * shard);
        ForwardLocal(hidden, T, _local);
        bool receives = root == _comm.Rank;
        if (receives) ColumnParallelLinear.Grow(ref _gathered, T * Partition.PaddedVocabSize);
        if (_recv.Length != _comm.Size) _recv = new int[_comm.Size];
        _recv.AsSpan().Fill(T * shard);
        _comm.GatherV<float>(_local.AsSpan(0, T * shard), receives ? _gathered : [], _recv, root);
        if (receives) ColumnParallelLinear.Interleave(_gathered, _shardCounts, T, logits, VocabSize, VocabSize);
    }
}
