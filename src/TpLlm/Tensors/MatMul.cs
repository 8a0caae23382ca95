namespace TpLlm.Tensors;

/// <summary>
/// One rank's matrix-multiply engine: <c>y[T, N] = x[T, K] · W[N, K]ᵀ</c> for any weight format
/// (<see cref="WeightMatrix.Multiply"/>), spread over the rank's <see cref="ComputePool"/> in slices of
/// whole 32-row panel pairs. Owns the zero-padded activation scratch of formats that read wider rows
/// than K (grown only when a larger T arrives) and a dispatch delegate made once, so a call allocates nothing.
/// </summary>
public sealed unsafe class MatMul : IDisposable
{
    private readonly ComputePool _pool;
    private readonly Action<int, int> _body;
    private float[] _packed = [];
    // current call, read by _body on every worker
    private WeightMatrix? _w;
    private float* _x;
    private float* _y;
    private int _t, _ldy, _rows;

    /// <summary>Instruction set used.</summary>
    public KernelPath Path { get; }

    /// <summary>Whether the 256-bit path's integer products use AVX-VNNI (<see cref="KernelPaths.Vnni"/>).</summary>
    public bool Vnni { get; }

    /// <summary>Sees each product's input before it runs (a calibration pass); null in inference.</summary>
    public IMatMulObserver? Observer { get; set; }

    /// <summary>Threads the kernel is spread over.</summary>
    public int Threads => _pool.Threads;

    /// <summary>
    /// Creates an engine on <paramref name="threads"/> threads using <paramref name="path"/> (default: the best) and,
    /// for the 256-bit path's integer products, AVX-VNNI when <paramref name="vnni"/> (default: where the processor has it).
    /// </summary>
    public MatMul(int threads = 1, KernelPath? path = null, bool? vnni = null)
    {
        Path = path ?? KernelPaths.Best;
        if (!KernelPaths.IsSupported(Path)) throw new TpLlmException($"kernel path {Path} is not supported on this CPU (best: {KernelPaths.Best})");
        if (vnni == true && !KernelPaths.Vnni) throw new TpLlmException("AVX-VNNI products were asked for, and this CPU has no AVX-VNNI");
        Vnni = vnni ?? KernelPaths.Vnni;
        _pool = new ComputePool(threads);
        _body = RunPart;
    }

    /// <summary>
    /// <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c>: <paramref name="x"/> is <c>[T, W.Cols]</c>,
    /// <paramref name="y"/> is <c>[T, ldy]</c> with columns [0, W.Rows) written.
    /// </summary>
    public void Run(ReadOnlySpan<float> x, int T, WeightMatrix w, Span<float> y, int ldy) => Run(x, T, w, y, ldy, w.Rows);

    /// <summary>Like <see cref="Run(ReadOnlySpan{float}, int, WeightMatrix, Span{float}, int)"/>, for W's first <paramref name="rows"/> rows only (columns [0, rows) of y).</summary>
    public void Run(ReadOnlySpan<float> x, int T, WeightMatrix w, Span<float> y, int ldy, int rows)
    {
        int K = w.Cols, Kp = w.InputStride;
        if (rows < 0 || rows > w.Rows) throw new ArgumentOutOfRangeException(nameof(rows), $"rows = {rows}, the matrix has {w.Rows}");
        if (T < 1) throw new ArgumentOutOfRangeException(nameof(T), $"T = {T}, must be ≥ 1");
        if (x.Length < T * K) throw new ArgumentException($"x has {x.Length} elements, [{T}, {K}] needs {T * K}");
        if (ldy < rows || y.Length < (T - 1) * ldy + rows) throw new ArgumentException($"y has {y.Length} elements with ldy {ldy}, [{T}, {rows}] does not fit");
        if (rows == 0) return;
        Observer?.Observe(w, x[..(T * K)], T);
        bool padded = Kp != K;
        if (padded)
        {
            if (_packed.Length < T * Kp) _packed = GC.AllocateArray<float>(T * Kp + 16, pinned: true);
            for (int t = 0; t < T; t++)
            {
                x.Slice(t * K, K).CopyTo(_packed.AsSpan(t * Kp, K));
                _packed.AsSpan(t * Kp + K, Kp - K).Clear();
            }
        }
        fixed (float* px = x)
        fixed (float* pp = _packed)
        fixed (float* py = y)
        {
            _w = w; _rows = rows; _x = padded ? pp : px; _y = py; _t = T; _ldy = ldy;
            _pool.Run(_body);
            _w = null;
        }
    }

    private void RunPart(int part, int parts)
    {
        var w = _w!;
        var (n0, n1) = ComputePool.Slice(_rows, part, parts, 2 * WeightMatrix.Panel);
        if (n0 >= n1) return;
        w.Multiply(Path, Vnni, _x, _t, n0, n1, _y, _ldy);
    }

    /// <inheritdoc />
    public void Dispose() => _pool.Dispose();

    /// <summary>Runs <c>body(part, parts)</c> on this matmul's threads (parts = <see cref="Threads"/>), for work other than a matmul.</summary>
    public void Parallel(Action<int, int> body) => _pool.Run(body);
}
