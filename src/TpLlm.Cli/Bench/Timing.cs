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
    /// Times several steps that every rank of <paramref name="comm"/> runs together, interleaved: each round times every
    /// step once (each at its own barriers), starting from a different step each round, so that a neighbour who comes
    /// and goes on a shared machine slows every step alike and comparisons between them stay fair. After a warm-up run
    /// of each; <paramref name="runs"/> rounds, or with 0 as many as fit in ~<paramref name="budgetSeconds"/> per step
    /// (at least 5, at most 50; rank 0 decides and broadcasts).
    /// </summary>
    public static Timing[] MeasureInterleaved(ICommunicator comm, IReadOnlyList<Action> bodies, int runs = 0, double budgetSeconds = 0.4)
    {
        double slowest = 1e-6;
        foreach (var body in bodies)
        {
            comm.Barrier();
            long w = Stopwatch.GetTimestamp();
            body();
            comm.Barrier();
            slowest = Math.Max(slowest, Stopwatch.GetElapsedTime(w).TotalSeconds);
        }
        var reps = new[] { runs > 0 ? runs : Math.Clamp((int)(budgetSeconds / slowest), 5, 50) };
        comm.Broadcast<int>(reps, 0);
        var times = bodies.Select(_ => new List<double>(reps[0])).ToArray();
        for (int i = 0; i < reps[0]; i++)
            for (int j = 0; j < bodies.Count; j++)
            {
                int k = (i + j) % bodies.Count;
                comm.Barrier();
                long t0 = Stopwatch.GetTimestamp();
                bodies[k]();
                comm.Barrier();
                times[k].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        return [.. times.Select(From)];
    }

    private static Timing From(List<double> times)
    {
        times.Sort();
        return new Timing(times[times.Count / 2], times[0], times[^1], times.Count);
    }
}
