using System.Runtime.CompilerServices;

namespace TpLlm.Tensors;

/// <summary>
/// Zero-filled, pinned storage of a given byte size whose <see cref="Pointer"/> is 64-byte aligned; allocated once,
/// held by the garbage collector (no freeing to forget). Backed by 8-byte elements, so it may exceed 2 GB.
/// </summary>
public sealed unsafe class AlignedBuffer
{
    private readonly ulong[] _data;
    private readonly int _offset; // elements from the array's start to the 64-byte boundary

    /// <summary>Bytes usable from <see cref="Pointer"/>.</summary>
    public long Bytes { get; }

    /// <summary>Allocates <paramref name="bytes"/> zero bytes.</summary>
    public AlignedBuffer(long bytes, string what)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"{what}: {bytes} bytes");
        long elements = (bytes + 7) / 8 + 8;
        if (elements > Array.MaxLength) throw new TpLlmException($"{what}: {bytes} bytes, more than one buffer holds");
        Bytes = bytes;
        _data = GC.AllocateArray<ulong>((int)elements, pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref _data[0]);
        _offset = (int)(((64 - (p & 63)) & 63) / 8);
    }

    /// <summary>The 64-byte aligned start.</summary>
    public byte* Pointer => (byte*)Unsafe.AsPointer(ref _data[_offset]);
}
