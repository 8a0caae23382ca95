namespace TpLlm.Tensors;

/// <summary>
/// A fixed set of worker threads that one rank uses to spread a kernel over cores.
/// The calling thread is worker 0. Dispatch allocates nothing: the body is a delegate the
/// caller creates once. Idle workers spin briefly, then sleep on a monitor.
/// </summary>
public sealed class ComputePool : IDisposable
{
    private readonly Thread[] _helpers;
    private readonly object _lock = new();
    private Action<int, int>? _body; // (part, parts)
    private int _parts;
    private long _generation;
    private int _remaining;
    private Exception? _error;
    private volatile bool _stopping;

    /// <summary>Number of threads, the caller included.</summary>
    public int Threads { get; }

    /// <summary>Creates a pool of <paramref name="threads"/> (≥ 1) threads, the caller included.</summary>
    public ComputePool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), $"compute threads = {threads}, must be ≥ 1");
        Threads = threads;
        _helpers = new Thread[threads - 1];
        for (int i = 0; i < _helpers.Length; i++)
        {
            int part = i + 1;
            _helpers[i] = new Thread(() => Work(part)) { IsBackground = true, Name = $"tpllm-compute-{part}" };
            _helpers[i].Start();
        }
    }

    /// <summary>Runs <c>body(part, parts)</c> for every part in [0, parts) with parts = <see cref="Threads"/>; returns when all are done.</summary>
    public void Run(Action<int, int> body)
    {
        if (_helpers.Length == 0)
        {
            body(0, 1);
            return;
        }
        _body = body;
        _parts = Threads;
        _error = null;
        Volatile.Write(ref _remaining, _helpers.Length);
        lock (_lock)
        {
            _generation++;
            Monitor.PulseAll(_lock);
        }
        Exception? mine = null;
        try { body(0, Threads); }
        catch (Exception e) { mine = e; }
        var spin = new SpinWait();
        while (Volatile.Read(ref _remaining) > 0) spin.SpinOnce(-1);
        _body = null;
        if (mine is not null) throw mine;
        if (_error is not null) throw new TpLlmException($"compute worker failed: {_error.Message}", _error);
    }

    private void Work(int part)
    {
        long seen = 0;
        while (true)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _generation) == seen && !_stopping)
            {
                if (spin.Count < 2000) { spin.SpinOnce(-1); continue; }
                lock (_lock)
                {
                    while (_generation == seen && !_stopping) Monitor.Wait(_lock);
                }
            }
            if (_stopping) return;
            seen = Volatile.Read(ref _generation);
            try { _body!(part, _parts); }
            catch (Exception e) { _error = e; }
            Interlocked.Decrement(ref _remaining);
        }
    }

    /// <summary>Splits [0, n) into <paramref name="parts"/> ranges whose starts are multiples of <paramref name="multiple"/>.</summary>
    public static (int Start, int End) Slice(int n, int part, int parts, int multiple)
    {
        int blocks = (n + multiple - 1) / multiple;
        int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
        return (Math.Min(n, b0 * multiple), Math.Min(n, b1 * multiple));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stopping = true;
        lock (_lock) Monitor.PulseAll(_lock);
    }
}
