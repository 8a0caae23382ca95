namespace TpLlm.Tensors;

/// <summary>
/// Sees the input of every product a <see cref="MatMul"/> runs, before it runs — how a calibration pass collects the
/// statistics of each linear layer's input without the layers knowing.
/// </summary>
public interface IMatMulObserver
{
    /// <summary>The product with <paramref name="weight"/> is about to run on <paramref name="x"/> <c>[T, weight.Cols]</c>.</summary>
    void Observe(WeightMatrix weight, ReadOnlySpan<float> x, int T);
}
