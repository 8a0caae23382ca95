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
                if (flag == 0) MpiNative.Check(MpiNative.Init(null, null), "MPI_Init");
                _world = new MpiCommunicator(MpiNative.CommWorld, owned: false);
                return _world;
            }
        }
    }

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
