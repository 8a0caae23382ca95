using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using TpLlm.Checkpoints;
using TpLlm.Parallel;
using TpLlm.Tensors;
using TpLlm.Tensors.Formats.F32;

namespace TpLlm.Quantization;

/// <summary>
/// Sums XᵀX <c>[K, K]</c> of the inputs of the weights it watches, as a <see cref="MatMul"/> runs them (attach it as
/// the <see cref="MatMul.Observer"/>): the second moment GPTQ weighs each layer's rounding errors by. Each batch of
/// T inputs is one product on its own engine — Xᵀ as a K × T matrix times itself.
/// </summary>
public sealed class HessianCollector : IMatMulObserver, IDisposable
{
    private readonly Dictionary<WeightMatrix, Sum> _sums = new(ReferenceEqualityComparer.Instance);
    private readonly MatMul _mm;
    private float[] _xt = [];     // [K, T]
    private float[] _window = []; // [K, K]

    /// <summary>Computes on <paramref name="threads"/> threads.</summary>
    public HessianCollector(int threads) => _mm = new MatMul(Math.Max(1, threads));

    /// <summary>Starts summing the inputs of <paramref name="weight"/> (a weight seen twice is summed once).</summary>
    public void Watch(WeightMatrix weight) => _sums.TryAdd(weight, new Sum(new float[(long)weight.Cols * weight.Cols]));

    /// <summary>XᵀX so far of <paramref name="weight"/>'s inputs, and how many rows X had.</summary>
    public (float[] XtX, long Rows) Of(WeightMatrix weight) =>
        _sums.TryGetValue(weight, out var s) ? (s.XtX, s.Rows) : throw new TpLlmException("no inputs were collected for this weight");

    /// <inheritdoc/>
    public void Observe(WeightMatrix weight, ReadOnlySpan<float> x, int T)
    {
        if (!_sums.TryGetValue(weight, out var sum)) return;
        int K = weight.Cols;
        ColumnParallelLinear.Grow(ref _xt, K * T);
        ColumnParallelLinear.Grow(ref _window, K * K);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) _xt[k * T + t] = x[t * K + k];
        var xt = F32Format.Instance.Create(K, T, DType.F32);
        for (int k = 0; k < K; k++) xt.SetRow(k, MemoryMarshal.AsBytes(_xt.AsSpan(k * T, T)), DType.F32, "calibration inputs");
        _mm.Run(_xt.AsSpan(0, K * T), K, xt, _window, K); // window[i, j] = Σ_t x[t, i] · x[t, j]
        TensorPrimitives.Add(sum.XtX, _window.AsSpan(0, K * K), sum.XtX);
        sum.Rows += T;
    }

    /// <inheritdoc/>
    public void Dispose() => _mm.Dispose();

    private sealed class Sum(float[] xtx)
    {
        public float[] XtX { get; } = xtx;
        public long Rows { get; set; }
    }
}
