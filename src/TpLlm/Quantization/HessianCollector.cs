using System.Numerics.Tensors;
using TpLlm.Parallel;
using TpLlm.Tensors;
using TpLlm.Tensors.Formats.F32;

namespace TpLlm.Quantization;

/// <summary>
/// Sums XᵀX <c>[K, K]</c> of the inputs of the weights it watches, as a <see cref="MatMul"/> runs them (attach it as
/// the <see cref="MatMul.Observer"/>): the second moment GPTQ weighs each layer's rounding errors by. Each batch of
/// T inputs is a product on its own engine — Xᵀ as a K × T matrix times itself, its lower triangle only (rows in chunks
/// against the rows up to each chunk's end: half the work of the square), mirrored when <see cref="Of"/> reads it.
/// </summary>
public sealed class HessianCollector : IMatMulObserver, IDisposable
{
    private readonly Dictionary<WeightMatrix, Sum> _sums = new(ReferenceEqualityComparer.Instance);
    private readonly MatMul _mm;
    private float[] _xt = [];     // [K, T]
    private float[] _window = []; // [Chunk, K]
    private readonly Dictionary<(int K, int T), F32Matrix> _xtMatrices = []; // Xᵀ as weights, one per shape seen
    private const int Chunk = 256;

    /// <summary>Computes on <paramref name="threads"/> threads.</summary>
    public HessianCollector(int threads) => _mm = new MatMul(Math.Max(1, threads));

    /// <summary>Starts summing the inputs of <paramref name="weight"/> (a weight seen twice is summed once).</summary>
    public void Watch(WeightMatrix weight) => _sums.TryAdd(weight, new Sum(new float[(long)weight.Cols * weight.Cols]));

    /// <summary>XᵀX so far of <paramref name="weight"/>'s inputs, and how many rows X had.</summary>
    public (float[] XtX, long Rows) Of(WeightMatrix weight)
    {
        if (!_sums.TryGetValue(weight, out var s)) throw new TpLlmException("no inputs were collected for this weight");
        int K = weight.Cols;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < i; j++) s.XtX[(long)j * K + i] = s.XtX[(long)i * K + j]; // the upper triangle from the lower
        return (s.XtX, s.Rows);
    }

    /// <inheritdoc/>
    public void Observe(WeightMatrix weight, ReadOnlySpan<float> x, int T)
    {
        if (!_sums.TryGetValue(weight, out var sum)) return;
        int K = weight.Cols;
        ColumnParallelLinear.Grow(ref _xt, K * T);
        ColumnParallelLinear.Grow(ref _window, Chunk * K);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) _xt[k * T + t] = x[t * K + k];
        if (!_xtMatrices.TryGetValue((K, T), out var xt)) _xtMatrices[(K, T)] = xt = new F32Matrix(K, T);
        for (int k = 0; k < K; k++) xt.SetRow(k, _xt.AsSpan(k * T, T));
        for (int r0 = 0; r0 < K; r0 += Chunk)
        {
            int r1 = Math.Min(K, r0 + Chunk);
            _mm.Run(_xt.AsSpan(r0 * T, (r1 - r0) * T), r1 - r0, xt, _window, r1, r1); // window[i − r0, j] = Σ_t x[t, i] · x[t, j], j < r1
            for (int i = r0; i < r1; i++)
            {
                var dst = sum.XtX.AsSpan((int)((long)i * K), i + 1);
                TensorPrimitives.Add(dst, _window.AsSpan((i - r0) * r1, i + 1), dst);
            }
        }
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
