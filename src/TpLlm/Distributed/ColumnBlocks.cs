namespace TpLlm.Distributed;

/// <summary>Checks and copies for <see cref="ICommunicator.AllGatherColumns{T}"/>: blocks of columns of a <c>[rows, ld]</c> buffer.</summary>
internal static class ColumnBlocks
{
    /// <summary>Throws unless every rank's block lies inside a row and the buffer holds <paramref name="rows"/> rows.</summary>
    public static void Check(int size, int length, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts)
    {
        if (offsets.Length != size || counts.Length != size)
            throw new TpLlmException($"all-gather columns: {offsets.Length} offsets and {counts.Length} counts for a group of {size} ranks");
        if (rows < 0 || ld < 0 || length < (long)rows * ld)
            throw new TpLlmException($"all-gather columns: buffer of {length} elements does not hold [{rows}, {ld}]");
        for (int r = 0; r < size; r++)
            if (offsets[r] < 0 || counts[r] < 0 || offsets[r] + counts[r] > ld)
                throw new TpLlmException($"all-gather columns: rank {r}'s block [{offsets[r]}, {offsets[r] + counts[r]}) is outside a row of {ld}");
    }

    /// <summary>Copies columns [offset, offset + count) of each row into <paramref name="dst"/> <c>[rows, count]</c>.</summary>
    public static void Pack<T>(ReadOnlySpan<T> buffer, int rows, int ld, int offset, int count, Span<T> dst)
    {
        for (int t = 0; t < rows; t++) buffer.Slice(t * ld + offset, count).CopyTo(dst.Slice(t * count, count));
    }

    /// <summary>Copies every rank's block but <paramref name="self"/>'s from rank-major <paramref name="src"/> into place.</summary>
    public static void Unpack<T>(ReadOnlySpan<T> src, Span<T> buffer, int rows, int ld, ReadOnlySpan<int> offsets, ReadOnlySpan<int> counts, int self)
    {
        int at = 0;
        for (int r = 0; r < offsets.Length; r++)
        {
            if (r != self)
                for (int t = 0; t < rows; t++) src.Slice(at + t * counts[r], counts[r]).CopyTo(buffer.Slice(t * ld + offsets[r], counts[r]));
            at += rows * counts[r];
        }
    }
}
