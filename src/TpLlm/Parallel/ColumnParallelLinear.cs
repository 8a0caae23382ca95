using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// <c>Y = X·Wᵀ + b</c> with W split along its output dimension (Megatron's
/// ColumnParallelLinear): rank r holds <c>W[out_r, in]</c> and computes <c>Y[:, out_r]</c>.
/// With <see cref="GatherOutput"/> the slices are all-gathered into <c>Y [T, out]</c>;
/// without it each rank keeps its <c>[T, out_r]</c> for a following row-parallel layer.
/// </summary>
public sealed class ColumnParallelLinear
{
    private readonly ICommunicator _comm;
    private readonly int[] _outCounts;   // out_r of every rank
    private float[] _local = [];          // [T, out_r]
    private float[] _gathered = [];       // [tp, T, out_r] rank-major
    private int[] _recvCounts = [];

    /// <summary>This rank's weight <c>[out_r, in]</c>.</summary>
    public WeightMatrix Weight { get; }

    /// <summary>This rank's bias <c>[out_r]</c>, or null.</summary>
    public float[]? Bias { get; }

    /// <summary>Whether <see cref="Forward"/> returns the all-gathered <c>[T, out]</c>.</summary>
    public bool GatherOutput { get; }

    /// <summary>Total output features (Σ out_r).</summary>
    public int OutFeatures { get; }

    /// <summary>Creates the layer; <paramref name="outCounts"/> lists every rank's out_r (needed to gather unequal shards).</summary>
    public ColumnParallelLinear(WeightMatrix weight, float[]? bias, ICommunicator comm, bool gatherOutput, int[]? outCounts = null)
    {
        Weight = weight;
        Bias = bias;
        _comm = comm;
        GatherOutput = gatherOutput;
        _outCounts = outCounts ?? Enumerable.Repeat(weight.Rows, comm.Size).ToArray();
        if (_outCounts.Length != comm.Size || _outCounts[comm.Rank] != weight.Rows)
            throw new TpLlmException($"column-parallel output counts [{string.Join(", ", _outCounts)}] do not match rank {comm.Rank}'s {weight.Rows} rows in a group of {comm.Size}");
        if (bias is not null && bias.Length != weight.Rows)
            throw new TpLlmException($"column-parallel bias has {bias.Length} elements, weight has {weight.Rows} rows");
        OutFeatures = _outCounts.Sum();
    }

    /// <summary>
    /// <paramref name="x"/> <c>[T, in]</c> → <paramref name="y"/> <c>[T, out]</c> if gathering,
    /// else <c>[T, out_r]</c>.
    /// </summary>
    public void Forward(MatMul mm, ReadOnlySpan<float> x, int T, Span<float> y)
    {
        int outR = Weight.Rows;
        if (!GatherOutput)
        {
            mm.Run(x, T, Weight, y, outR);
            AddBias(y, T);
            return;
        }
        Grow(ref _local, T * outR);
        Grow(ref _gathered, T * OutFeatures);
        mm.Run(x, T, Weight, _local, outR);
        AddBias(_local, T);
        if (_recvCounts.Length != _comm.Size) _recvCounts = new int[_comm.Size];
        for (int r = 0; r < _comm.Size; r++) _recvCounts[r] = T * _outCounts[r];
        _comm.AllGatherV<float>(_local.AsSpan(0, T * outR), _gathered, _recvCounts);
        Interleave(_gathered, _outCounts, T, y, OutFeatures, OutFeatures);
    }

    /// <summary>
    /// Rearranges rank-major <c>[tp, T, out_r]</c> into <c>[T, ldy]</c>, keeping only the first
    /// <paramref name="keep"/> columns (drops padding past V).
    /// </summary>
    public static void Interleave(ReadOnlySpan<float> rankMajor, ReadOnlySpan<int> outCounts, int T, Span<float> y, int ldy, int keep)
    {
        int src = 0, col = 0;
        for (int r = 0; r < outCounts.Length; r++)
        {
            int n = outCounts[r];
            int take = Math.Clamp(keep - col, 0, n);
            for (int t = 0; t < T && take > 0; t++)
                rankMajor.Slice(src + t * n, take).CopyTo(y.Slice(t * ldy + col, take));
            src += T * n;
            col += n;
        }
    }

    private void AddBias(Span<float> y, int T)
    {
        if (Bias is null) return;
        for (int t = 0; t < T; t++)
            System.Numerics.Tensors.TensorPrimitives.Add(y.Slice(t * Weight.Rows, Weight.Rows), Bias, y.Slice(t * Weight.Rows, Weight.Rows));
    }

    internal static void Grow(ref float[] buffer, int n)
    {
        if (buffer.Length < n) buffer = new float[n];
    }
}
