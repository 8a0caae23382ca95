using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// The row-parallel LM head that xLLM #1145 replaced, kept for comparison: rank r holds
/// <c>W[V, H_r]</c> and computes partial logits <c>[T, V]</c>, all-reduced (2·(tp−1)/tp·T·V·4
/// bytes per rank on a ring, versus (tp−1)/tp·T·V_pad·4 for the column split).
/// Requires <c>H % tp == 0</c>.
/// </summary>
public sealed class RowParallelLmHead : ILmHead
{
    private readonly RowParallelLinear _linear;
    private readonly MatMul _mm;

    /// <inheritdoc />
    public LmHeadStrategy Strategy => LmHeadStrategy.RowParallel;

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <inheritdoc />
    public WeightMatrix Weight => _linear.Weight;

    /// <summary>Wraps this rank's column slice <paramref name="weight"/> <c>[V, H/tp]</c>, multiplied by <paramref name="mm"/>'s kernels; the input is the full hidden <c>[T, H]</c>.</summary>
    public RowParallelLmHead(WeightMatrix weight, int hiddenSize, ICommunicator comm, MatMul mm)
    {
        _mm = mm;
        int hR = hiddenSize / comm.Size;
        _linear = new RowParallelLinear(weight, null, comm, inputIsParallel: false, reduceResults: true, comm.Rank * hR, hiddenSize);
        VocabSize = weight.Rows;
    }

    /// <summary>When set, logits are soft-capped after the reduction: <c>cap · tanh(x / cap)</c>.</summary>
    public float? Softcap { get; init; }

    /// <inheritdoc />
    public void Forward(ReadOnlySpan<float> hidden, int T, Span<float> logits)
    {
        _linear.Forward(_mm, hidden, T, logits);
        if (Softcap is { } cap) Tensors.Softcap.Apply(logits[..(T * VocabSize)], cap);
    }
}
