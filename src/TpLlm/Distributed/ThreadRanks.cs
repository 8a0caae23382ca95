using System.Runtime.ExceptionServices;

namespace TpLlm.Distributed;

/// <summary>Runs a function on every rank of an in-process world, one thread per rank.</summary>
public static class ThreadRanks
{
    /// <summary>Default time a collective waits for the other ranks.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The collective timeout in effect: <c>TPLLM_COLLECTIVE_TIMEOUT</c> (seconds) when set to a positive number, else <see cref="DefaultTimeout"/>.</summary>
    public static TimeSpan ConfiguredTimeout =>
        double.TryParse(Environment.GetEnvironmentVariable("TPLLM_COLLECTIVE_TIMEOUT"), System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : DefaultTimeout;

    /// <summary>
    /// Runs <paramref name="body"/> on <paramref name="size"/> ranks and returns each rank's result.
    /// If any rank throws, every rank's collectives throw, all threads end, and the originating
    /// exception is rethrown wrapped in a <see cref="RankFailedException"/> naming its rank.
    /// </summary>
    public static T[] Run<T>(int size, Func<ICommunicator, T> body, TimeSpan? timeout = null)
    {
        if (size < 1) throw new TpLlmException($"number of ranks = {size}, must be ≥ 1");
        var failure = new FailureState();
        var group = new ThreadGroup(Enumerable.Range(0, size).ToArray(), failure, timeout ?? DefaultTimeout);
        var results = new T[size];
        if (size == 1)
        {
            using var comm = new ThreadCommunicator(group, 0);
            try { return [body(comm)]; }
            catch (Exception e) when (e is not RankFailedException) { throw new RankFailedException(0, e); }
        }
        var threads = new Thread[size];
        for (int r = 0; r < size; r++)
        {
            int rank = r;
            threads[r] = new Thread(() =>
            {
                var comm = new ThreadCommunicator(group, rank);
                try { results[rank] = body(comm); }
                catch (Exception e) { failure.Fail(rank, e); }
            }, 16 << 20) { IsBackground = true, Name = $"tpllm-rank-{rank}" };
            threads[r].Start();
        }
        foreach (var t in threads) t.Join();
        if (failure.First is { } first)
        {
            if (first is RankFailedException) ExceptionDispatchInfo.Throw(first);
            throw failure.ToException();
        }
        return results;
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="size"/> ranks.</summary>
    public static void Run(int size, Action<ICommunicator> body, TimeSpan? timeout = null) =>
        Run(size, c => { body(c); return 0; }, timeout);
}
