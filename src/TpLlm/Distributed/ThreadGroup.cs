using System.Diagnostics;

namespace TpLlm.Distributed;

/// <summary>
/// Shared state of in-process ranks: a sense-reversing spin barrier that gives up on failure
/// or timeout, and one published pointer and count per rank. No locks, no allocation per call.
/// </summary>
internal sealed unsafe class ThreadGroup
{
    public readonly int Size;
    public readonly int[] WorldRanks;
    public readonly FailureState Failure;
    public readonly TimeSpan Timeout;
    public readonly nint[] Pointers;
    public readonly long[] Counts;
    public readonly int[] Ops;
    public readonly object?[] Slots;
    public float[] ScratchF = [];
    public double[] ScratchD = [];
    private int _arrived;
    private volatile int _sense;

    public ThreadGroup(int[] worldRanks, FailureState failure, TimeSpan timeout)
    {
        Size = worldRanks.Length;
        WorldRanks = worldRanks;
        Failure = failure;
        Timeout = timeout;
        Pointers = new nint[Size];
        Counts = new long[Size];
        Ops = new int[Size];
        Slots = new object?[Size];
    }

    /// <summary>Waits for every rank; throws if any rank failed or the timeout passes.</summary>
    public void Arrive(ref int localSense, int rank, string what)
    {
        localSense ^= 1;
        if (Failure.First is not null) throw Failure.ToException();
        if (Interlocked.Increment(ref _arrived) == Size)
        {
            _arrived = 0;
            _sense = localSense;
            return;
        }
        var spin = new SpinWait();
        long start = Stopwatch.GetTimestamp();
        while (_sense != localSense)
        {
            if (Failure.First is not null) throw Failure.ToException();
            spin.SpinOnce(-1);
            if (spin.Count % 64 == 0 && Stopwatch.GetElapsedTime(start) > Timeout)
            {
                var e = new CollectiveTimeoutException(
                    $"{what}: rank {rank} of {Size} waited {Timeout.TotalSeconds:0.#} s for the other ranks (collective timeout)");
                Failure.Fail(WorldRanks[rank], e);
                throw Failure.ToException();
            }
        }
    }

    public void Fail(int rank, Exception e)
    {
        Failure.Fail(WorldRanks[rank], e);
    }
}
