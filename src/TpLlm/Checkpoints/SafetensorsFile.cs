using System.Runtime.InteropServices;
using System.Text.Json;

namespace TpLlm.Checkpoints;

/// <summary>
/// A safetensors file opened over a read-only memory map. The header is validated in full
/// when the file is opened: its length lies within the file, the JSON is well formed, every
/// tensor has a known dtype, non-negative dimensions, offsets inside the data section that
/// match dtype × shape, and no two tensors overlap. Nothing is read from the data section
/// until a caller asks for a range of it, and then only that range is touched.
/// </summary>
/// <remarks>
/// Layout: <c>[u64 little-endian header length N][N bytes of JSON][data section]</c>.
/// </remarks>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the format's reference reader uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _file;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorInfo> _tensors;
    private bool _disposed;

    /// <summary>Path of the file.</summary>
    public string Path { get; }

    /// <summary>Length of the file in bytes.</summary>
    public long Length => _file.Length;

    /// <summary>Length of the data section in bytes.</summary>
    public long DataLength => Length - _dataStart;

    /// <summary>All tensors in the header, by exact name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointException">The file is missing or malformed.</exception>
    public SafetensorsFile(string path)
    {
        Path = path;
        _file = new MappedFile(path, "safetensors", 8, "the 8-byte header length prefix");
        _base = _file.Base;
        try
        {
            ulong headerLen = *(ulong*)_base;
            if (headerLen > (ulong)(Length - 8))
                throw new CheckpointException(
                    $"{path}: header length {headerLen} runs past the end of the file ({Length} bytes, at most {Length - 8} for the header)");
            if ((long)headerLen > MaxHeaderBytes)
                throw new CheckpointException($"{path}: header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit");
            _dataStart = 8 + (long)headerLen;
            var header = new ReadOnlySpan<byte>(_base + 8, (int)headerLen);
            (_tensors, Metadata) = SafetensorsHeader.Parse(path, header, DataLength);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Looks a tensor up by its exact name.</summary>
    public bool TryGet(string name, out TensorInfo info) => _tensors.TryGetValue(name, out info!);

    /// <summary>
    /// The bytes <c>[offset, offset + length)</c> of a tensor's data, as a view on the map.
    /// The span is valid until the file is disposed.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(TensorInfo t, long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset + length > t.ByteLength)
            throw new CheckpointException(
                $"{Path}: read of bytes [{offset}, {offset + length}) outside tensor '{t.Name}' ({t.ByteLength} bytes)");
        return new ReadOnlySpan<byte>(_base + _dataStart + t.Begin + offset, length);
    }

    /// <summary>
    /// Drops the pages of tensor <paramref name="t"/> from this process's resident set
    /// (<c>madvise(MADV_DONTNEED)</c>): after a rank has copied its slice, the mapped pages it
    /// touched — and those the kernel mapped around them — stop counting against the rank.
    /// They are read again from the page cache if touched later. A no-op where unsupported.
    /// </summary>
    public void Release(TensorInfo t)
    {
        if (!_disposed) _file.Release(_dataStart + t.Begin, t.ByteLength);
    }

    /// <summary>Reads a whole tensor as f32 (any float dtype) — for small tensors and tests.</summary>
    public float[] ReadF32(string name)
    {
        var t = Require(name);
        var result = new float[checked((int)t.ElementCount)];
        ElementConvert.ToF32(t.DType, Bytes(t, 0, checked((int)t.ByteLength)), result, $"{Path}: tensor '{name}'");
        return result;
    }

    /// <summary>Reads a whole I64 tensor.</summary>
    public long[] ReadI64(string name)
    {
        var t = Require(name);
        if (t.DType != DType.I64)
            throw new CheckpointException($"{Path}: tensor '{name}' is {t.DType}, expected I64");
        return MemoryMarshal.Cast<byte, long>(Bytes(t, 0, checked((int)t.ByteLength))).ToArray();
    }

    /// <summary>The tensor named exactly <paramref name="name"/>, or a clear error.</summary>
    public TensorInfo Require(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new CheckpointException($"{Path}: no tensor named '{name}'");

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
    }
}
