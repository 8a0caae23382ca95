using System.IO.MemoryMappedFiles;

namespace TpLlm.Checkpoints;

/// <summary>
/// A checkpoint file mapped read-only: its length through symbolic links (a Hugging Face cache snapshot is a folder of
/// links to blobs), a pointer to its first byte, and the pages of a range given back once copied. Opening refuses
/// what is not a regular file (a FIFO would hang the open, a device has no end).
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private bool _disposed;

    /// <summary>The file's first byte.</summary>
    public byte* Base { get; }

    /// <summary>Its length in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>, which must be at least <paramref name="minLength"/> bytes (<paramref name="what"/> names that need).</summary>
    public MappedFile(string path, string kind, long minLength, string what)
    {
        if (!IO.InputFile.Exists(path)) throw new CheckpointException($"{path}: {kind} file not found");
        IO.InputFile.RequireRegular(path, m => new CheckpointException(m));
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            Length = stream.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path}: cannot open the file: {e.Message}", e);
        }
        if (Length < minLength) throw new CheckpointException($"{path}: file is {Length} bytes, shorter than {what}");
        try
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _map?.Dispose();
            throw new CheckpointException($"{path}: cannot map the file: {e.Message}", e);
        }
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Base = p + _view.PointerOffset;
    }

    /// <summary>
    /// Drops bytes [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) from the process's
    /// resident set (<c>madvise(MADV_DONTNEED)</c> on the whole pages around them, within the mapping): after a rank has
    /// copied its slice, the pages it touched stop counting against it, and are read again from the page cache if
    /// touched later. A no-op where unsupported.
    /// </summary>
    public void Release(long start, long length)
    {
        if (_disposed || !OperatingSystem.IsLinux() || length <= 0) return;
        const long page = 4096;
        long s = (long)(Base + start), e = s + length;
        long alignedStart = Math.Max(s / page * page, (long)Base / page * page);
        long alignedEnd = Math.Min((e + page - 1) / page * page, (long)(Base + Length + page - 1) / page * page);
        if (alignedEnd > alignedStart) Madvise((nint)alignedStart, (nuint)(alignedEnd - alignedStart), 4 /* MADV_DONTNEED */);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(nint addr, nuint length, int advice);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
