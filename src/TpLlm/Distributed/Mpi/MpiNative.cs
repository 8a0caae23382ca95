using System.Runtime.InteropServices;

namespace TpLlm.Distributed.Mpi;

/// <summary>
/// Open MPI's C API, bound at run time from <c>libmpi.so.40</c> (loaded only when MPI is used).
/// Handles are Open MPI's: <c>MPI_COMM_WORLD</c>, <c>MPI_BYTE</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>… are
/// the addresses of its exported objects (<c>ompi_mpi_comm_world</c>, …); <c>MPI_IN_PLACE</c> is 1.
/// </summary>
internal static unsafe class MpiNative
{
    public static readonly nint Lib;
    public static readonly nint CommWorld, Byte, Float, Double, Int, OpSum, OpMax, ErrorsReturn;
    public static readonly nint InPlace = 1;

    public static readonly delegate* unmanaged<int*, byte***, int> Init;
    public static readonly delegate* unmanaged<int*, int> Initialized;
    public static readonly delegate* unmanaged<int*, int> Finalized;
    public static readonly delegate* unmanaged<int> Finalize;
    public static readonly delegate* unmanaged<nint, int*, int> CommRank;
    public static readonly delegate* unmanaged<nint, int*, int> CommSize;
    public static readonly delegate* unmanaged<nint, int, int, nint*, int> CommSplit;
    public static readonly delegate* unmanaged<nint*, int> CommFree;
    public static readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int> Allgatherv;
    public static readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, int> Gatherv;
    public static readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> Allreduce;
    public static readonly delegate* unmanaged<void*, int, nint, int, nint, int> Bcast;
    public static readonly delegate* unmanaged<nint, int> Barrier;
    public static readonly delegate* unmanaged<nint, int, int> Abort;
    public static readonly delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public static readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;

    static MpiNative()
    {
        if (!NativeLibrary.TryLoad("libmpi.so.40", out Lib) && !NativeLibrary.TryLoad("libmpi.so", out Lib))
            throw new TpLlmException("MPI requested but Open MPI's libmpi.so.40 was not found: install openmpi-bin (apt-get install openmpi-bin) and run under mpirun");
        CommWorld = Export("ompi_mpi_comm_world");
        Byte = Export("ompi_mpi_byte");
        Float = Export("ompi_mpi_float");
        Double = Export("ompi_mpi_double");
        Int = Export("ompi_mpi_int");
        OpSum = Export("ompi_mpi_op_sum");
        OpMax = Export("ompi_mpi_op_max");
        ErrorsReturn = Export("ompi_mpi_errors_return");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
        Init = (delegate* unmanaged<int*, byte***, int>)Export("MPI_Init");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        CommSplit = (delegate* unmanaged<nint, int, int, nint*, int>)Export("MPI_Comm_split");
        CommFree = (delegate* unmanaged<nint*, int>)Export("MPI_Comm_free");
        Allgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int>)Export("MPI_Allgatherv");
        Gatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, int>)Export("MPI_Gatherv");
        Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
    }

    private static nint Export(string name) =>
        NativeLibrary.TryGetExport(Lib, name, out var p) ? p : throw new TpLlmException($"libmpi.so.40 has no symbol '{name}': is this Open MPI 4 or later?");

    public static void Check(int rc, string what)
    {
        if (rc == 0) return;
        var buf = stackalloc byte[256];
        int len = 0;
        string text = ErrorString(rc, buf, &len) == 0 ? System.Text.Encoding.ASCII.GetString(buf, Math.Clamp(len, 0, 256)) : "unknown error";
        throw new TpLlmException($"{what} failed with MPI error {rc}: {text} (mismatched collective sizes across ranks?)");
    }
}
