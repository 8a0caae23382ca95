namespace TpLlm.Distributed.Mpi;

/// <summary>Starting and ending MPI in this process.</summary>
public static unsafe class MpiRuntime
{
    private static MpiCommunicator? _world;
    private static readonly object Gate = new();

    /// <summary>True when this process was started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>The world communicator; initializes MPI on first use.</summary>
    public static MpiCommunicator World
    {
        get
        {
            lock (Gate)
            {
                if (_world is not null) return _world;
                int flag = 0;
                MpiNative.Check(MpiNative.Initialized(&flag), "MPI_Initialized");
                if (flag == 0)
                {
                    YieldWhenIdleAcrossHosts();
                    MpiNative.Check(MpiNative.Init(null, null), "MPI_Init");
                }
                _world = new MpiCommunicator(MpiNative.CommWorld, owned: false);
                return _world;
            }
        }
    }

    /// <summary>True when the job's ranks are on more than one host (Open MPI's local and world sizes differ).</summary>
    public static bool SpansHosts =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"), out int world)
        && int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int local) && local < world;

    // A rank waiting in a collective polls for the message; between hosts the message arrives through the kernel's
    // network stack, whose receive work (softirq, ksoftirqd) needs a core that the polling ranks hold: on a machine
    // with no spare core, every collective then waits a scheduler time slice (fortune-llama, tp 2 on two hosts: 18
    // tokens/s against 860 when waiting ranks yield; docs/performance.md). So a job that spans hosts yields when idle,
    // unless the user chose otherwise (OMPI_MCA_mpi_yield_when_idle, or --mca mpi_yield_when_idle on mpirun). A job on
    // one host talks through shared memory and keeps polling, which is fastest there.
    private static void YieldWhenIdleAcrossHosts()
    {
        const string name = "OMPI_MCA_mpi_yield_when_idle";
        if (SpansHosts && Environment.GetEnvironmentVariable(name) is null) SetEnv(name, "1", 0);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string name,
        [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string value, int overwrite);

    /// <summary>Ends every process of the job with <paramref name="code"/> (MPI_Abort), after this process wrote its message.</summary>
    public static void AbortAll(int code) => MpiNative.Abort(MpiNative.CommWorld, code);

    /// <summary>Finalizes MPI if it was initialized.</summary>
    public static void Shutdown()
    {
        lock (Gate)
        {
            if (_world is null) return;
            int done = 0;
            MpiNative.Finalized(&done);
            if (done == 0) MpiNative.Finalize();
            _world = null;
        }
    }
}
