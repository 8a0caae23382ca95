using System.Runtime.CompilerServices;

namespace TpLlm.Tensors;

/// <summary>A later pass over weights an earlier tile already brought into cache: nothing to request.</summary>
internal readonly unsafe struct NoPrefetch : IWeightPrefetch
{
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Ahead(byte* line, int offset) { }
}
