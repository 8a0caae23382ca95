using System.Numerics.Tensors;
using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// <c>Y = X·Wᵀ + b</c> with W split along its input dimension (Megatron's RowParallelLinear):
/// rank r holds <c>W[out, in_r]</c> and computes partial sums <c>X[:, in_r]·W_rᵀ</c>, which
/// <see cref="ReduceResults"/> all-reduces. The bias is added once, after the reduction.
/// With <see cref="InputIsParallel"/> the input is already the rank's <c>[T, in_r]</c> slice
/// (the output of a column-parallel layer); otherwise the rank slices the full <c>[T, in]</c>.
/// </summary>
public sealed class RowParallelLinear
{
    private readonly ICommunicator _comm;
    private float[] _slice = [];

    /// <summary>This rank's weight <c>[out, in_r]</c>.</summary>
    public WeightMatrix Weight { get; }

    /// <summary>Full bias <c>[out]</c>, or null.</summary>
    public float[]? Bias { get; }

    /// <summary>Input is this rank's <c>[T, in_r]</c> slice.</summary>
    public bool InputIsParallel { get; }

    /// <summary>All-reduce the partial sums (and then add the bias). When false the caller gets partial sums without bias.</summary>
    public bool ReduceResults { get; }

    /// <summary>First input column of this rank's slice (used when the input is not parallel).</summary>
    public int InputStart { get; }

    /// <summary>Full input width (used when the input is not parallel).</summary>
    public int InFeatures { get; }

    /// <summary>Creates the layer.</summary>
    public RowParallelLinear(WeightMatrix weight, float[]? bias, ICommunicator comm, bool inputIsParallel, bool reduceResults,
        int inputStart = 0, int inFeatures = -1)
    {
        Weight = weight;
        Bias = bias;
        _comm = comm;
        InputIsParallel = inputIsParallel;
        ReduceResults = reduceResults;
        InputStart = inputStart;
        InFeatures = inFeatures < 0 ? weight.Cols : inFeatures;
        if (bias is not null && bias.Length != weight.Rows)
            throw new TpLlmException($"row-parallel bias has {bias.Length} elements, weight has {weight.Rows} rows");
        if (inputStart < 0 || inputStart + weight.Cols > InFeatures)
            throw new TpLlmException($"row-parallel input slice [{inputStart}, {inputStart + weight.Cols}) outside {InFeatures} input features");
    }

    /// <summary><paramref name="x"/> <c>[T, in_r]</c> (or <c>[T, in]</c>) → <paramref name="y"/> <c>[T, out]</c>.</summary>
    public void Forward(MatMul mm, ReadOnlySpan<float> x, int T, Span<float> y)
    {
        int inR = Weight.Cols, outF = Weight.Rows;
        if (!InputIsParallel)
        {
            ColumnParallelLinear.Grow(ref _slice, T * inR);
            for (int t = 0; t < T; t++) x.Slice(t * InFeatures + InputStart, inR).CopyTo(_slice.AsSpan(t * inR, inR));
            x = _slice;
        }
        mm.Run(x, T, Weight, y, outF);
        if (!ReduceResults) return;
        _comm.AllReduce(y[..(T * outF)], ReduceOp.Sum);
        if (Bias is not null)
            for (int t = 0; t < T; t++) TensorPrimitives.Add(y.Slice(t * outF, outF), Bias, y.Slice(t * outF, outF));
    }
}
