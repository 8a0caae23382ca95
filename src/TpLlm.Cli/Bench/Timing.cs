using System.Diagnostics;
using TpLlm.Distributed;

namespace TpLlm.Cli.Bench;

/// <summary>Median and spread of repeated timings.</summary>
/// <param name="MedianMs">Median, ms.</param>
/// <param name="MinMs">Fastest, ms.</param>
/// <param name="MaxMs">Slowest, ms.</param>
/// <param name="Runs">Timed runs.</param>
public sealed record Timing(double MedianMs, double MinMs, double MaxMs, int Runs)
{
    /// <summary>
    /// Times a step that every rank of <paramref name="comm"/> runs together, after a warm-up run: each run starts and
    /// ends at a barrier; rank 0 picks the run count (broadcast) so the ranks stay in step. <paramref name="runs"/>
    /// timed runs, or with 0 as many as fit in ~<paramref name="budgetSeconds"/> (at least 5, at most 50).
    /// </summary>
    public static Timing MeasureCollective(ICommunicator comm, Action body, int runs = 0, double budgetSeconds = 0.4)
    {
        comm.Barrier();
        long w = Stopwatch.GetTimestamp();
        body();
        comm.Barrier();
        var reps = new[] { runs > 0 ? runs : Math.Clamp((int)(budgetSeconds / Math.Max(Stopwatch.GetElapsedTime(w).TotalSeconds, 1e-6)), 5, 50) };
        comm.Broadcast<int>(reps, 0);
        var times = new List<double>();
        for (int i = 0; i < reps[0]; i++)
        {
            comm.Barrier();
            long t0 = Stopwatch.GetTimestamp();
            body();
            comm.Barrier();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        return From(times);
    }

    private static Timing From(List<double> times)
    {
        times.Sort();
        return new Timing(times[times.Count / 2], times[0], times[^1], times.Count);
    }
}
