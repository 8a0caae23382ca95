using TpLlm.Distributed;
using TpLlm.Distributed.Mpi;

namespace TpLlm.Cli.Bench;

/// <summary>
/// Where a benchmark's ranks run: threads of this process, or — under <c>mpirun</c>, on one host or several — the
/// processes of the job, one rank each (its size must be the tp measured). Rank 0 reports; the others run silently.
/// </summary>
public static class BenchRanks
{
    /// <summary>True when this process reports (not a non-zero rank of an MPI job).</summary>
    public static bool Reports => !MpiRuntime.LaunchedByMpirun || MpiRuntime.World.Rank == 0;

    /// <summary>Runs <paramref name="body"/> on <paramref name="tp"/> ranks; true with rank 0's result where this process reports.</summary>
    public static bool Run<T>(int tp, Func<ICommunicator, T> body, out T result)
    {
        if (!MpiRuntime.LaunchedByMpirun)
        {
            result = ThreadRanks.Run(tp, body)[0];
            return true;
        }
        var w = MpiRuntime.World;
        w.Timeout = RankLauncher.Timeout;
        if (w.Size != tp) throw new TpLlmException($"mpirun started {w.Size} processes but the benchmark measures --tp {tp}; under mpirun give --tp {w.Size}");
        try
        {
            result = body(w);
            return w.Rank == 0;
        }
        catch (Exception e)
        {
            w.Abort(new TpLlmException(CliRunner.Describe(e is RankFailedException { InnerException: { } inner } ? inner : e)));
            throw;
        }
    }
}
