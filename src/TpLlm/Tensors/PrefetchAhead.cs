using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors;

/// <summary>The first pass over a block of weights: requests the line <see cref="Bytes"/> ahead into L1.</summary>
internal readonly unsafe struct PrefetchAhead : IWeightPrefetch
{
    /// <summary>Bytes ahead of the weight read (~32 lines: past DRAM latency, across the 4 KB pages where the
    /// hardware prefetcher stops).</summary>
    public const int Bytes = 2048;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Ahead(byte* line, int offset)
    {
        if (Sse.IsSupported) Sse.Prefetch0(line + (offset + Bytes));
    }
}
