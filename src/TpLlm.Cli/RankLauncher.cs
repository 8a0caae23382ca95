using TpLlm.Distributed;
using TpLlm.Distributed.Mpi;

namespace TpLlm.Cli;

/// <summary>
/// Runs a command's work on <c>dp × tp</c> ranks: threads of this process, or — when started by
/// <c>mpirun</c> — the processes of the MPI job, one rank each. Replica d is world ranks
/// [d·tp, (d+1)·tp). Each replica's leader returns an int payload, gathered on world rank 0.
/// A failure on any rank ends every rank with that rank's message.
/// </summary>
public static class RankLauncher
{
    /// <summary>True when this process is world rank 0 (the one that writes to stdout).</summary>
    public static bool IsRoot => !MpiRuntime.LaunchedByMpirun || MpiRuntime.World.Rank == 0;

    /// <summary>Collective timeout, from TPLLM_COLLECTIVE_TIMEOUT (seconds) or the default.</summary>
    public static TimeSpan Timeout => ThreadRanks.ConfiguredTimeout;

    /// <summary>
    /// Runs <paramref name="body"/>(tpGroup, replica) on every rank; returns the payload of each
    /// replica's leader, in replica order, on world rank 0 (null on other MPI ranks).
    /// </summary>
    public static int[][]? Run(int dp, int tp, Func<ICommunicator, int, int[]> body)
    {
        if (dp < 1) throw new TpLlmException($"--dp {dp} must be ≥ 1");
        if (tp < 1) throw new TpLlmException($"--tp {tp} must be ≥ 1");
        if (!MpiRuntime.LaunchedByMpirun)
        {
            var all = ThreadRanks.Run(dp * tp, world =>
            {
                using var group = world.SplitTensorParallel(tp);
                return body(FaultInjection.Wrap(group), world.Rank / tp);
            }, Timeout);
            return Enumerable.Range(0, dp).Select(d => all[d * tp]).ToArray();
        }
        var w = MpiRuntime.World;
        w.Timeout = Timeout;
        WarnIfBound();
        if (w.Size != dp * tp)
            throw new TpLlmException($"mpirun started {w.Size} processes but --dp {dp} × --tp {tp} = {dp * tp}; use mpirun -np {dp * tp}");
        try
        {
            using var group = (MpiCommunicator)w.SplitTensorParallel(tp);
            group.Timeout = Timeout;
            var mine = body(FaultInjection.Wrap(group), w.Rank / tp);
            ReportMemory(w.Rank);
            return GatherLeaders(w, tp, group.Rank == 0 ? mine : []);
        }
        catch (Exception e)
        {
            // one rank failed: say why, then end every process of the job
            w.Abort(new TpLlmException(CliRunner.Describe(e is RankFailedException { InnerException: { } inner } ? inner : e)));
            throw;
        }
    }

    /// <summary>
    /// Warns (once per host) when mpirun bound each rank to fewer cores than the host has for it: Open MPI binds every
    /// rank to one core when it starts two or fewer processes, and a rank computes on the cores it may use — one, of
    /// perhaps dozens — unless mpirun is told otherwise.
    /// </summary>
    public static void WarnIfBound()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int local) || local < 1) return;
        if (Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK") != "0") return;
        int online = OnlineCpus(), allowed = Environment.ProcessorCount;
        if (online > 0 && allowed < online / local)
            StdOut.Err.WriteLine($"tpllm: warning: this host's ranks may each use {allowed} of its {online} cores (mpirun bound them); " +
                $"start mpirun with --bind-to none, or --map-by ppr:{local}:node:PE={online / local}, to let each rank compute on {online / local}");
    }

    // cores the kernel has online, whatever this process may use: /sys/devices/system/cpu/online ("0-15", "0-3,8-11")
    private static int OnlineCpus()
    {
        try
        {
            int n = 0;
            foreach (var part in File.ReadAllText("/sys/devices/system/cpu/online").Trim().Split(','))
            {
                var ends = part.Split('-');
                n += ends.Length == 2 ? int.Parse(ends[1]) - int.Parse(ends[0]) + 1 : 1;
            }
            return n;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>With TPLLM_REPORT_MEMORY=1, prints this process's peak resident memory (VmHWM).</summary>
    public static void ReportMemory(int rank)
    {
        if (Environment.GetEnvironmentVariable("TPLLM_REPORT_MEMORY") != "1") return;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        StdOut.Err.WriteLine($"tpllm: rank {rank}: peak resident memory {line?["VmHWM:".Length..].Trim()}");
    }

    private static int[][]? GatherLeaders(ICommunicator world, int tp, int[] payload)
    {
        var lengths = new int[world.Size];
        world.Gather<int>([payload.Length], lengths, 0);
        var all = new int[world.Rank == 0 ? lengths.Sum() : 0];
        var counts = new int[world.Size];
        world.Broadcast<int>(lengths, 0);
        lengths.CopyTo(counts, 0);
        world.GatherV<int>(payload, all, counts, 0);
        if (world.Rank != 0) return null;
        var result = new int[world.Size / tp][];
        int off = 0;
        for (int r = 0; r < world.Size; r++)
        {
            if (r % tp == 0) result[r / tp] = all[off..(off + lengths[r])];
            off += lengths[r];
        }
        return result;
    }
}
