using System.Text;

namespace TpLlm.Checkpoints.Gguf;

/// <summary>
/// A GGUF file (llama.cpp's single-file model format, versions 2 and 3) opened over a read-only memory map. The
/// header is validated in full when the file opens — every count, string and array against the bytes that remain,
/// every tensor's type, dimensions, size and alignment against the data section, no two tensors overlapping — so a
/// lying header fails with its field named before anything large is allocated. Tensor data is touched only when a
/// caller asks for a range of it.
/// </summary>
/// <remarks>
/// Layout: <c>"GGUF", u32 version, u64 tensor count, u64 metadata count, metadata (key, u32 type, value)…, tensor
/// infos (name, u32 dims, u64 ne[dims], u32 type, u64 offset)…</c>, padding to <c>general.alignment</c> (32), data.
/// Strings are a u64 length and UTF-8 bytes; arrays a u32 element type, a u64 count and the elements.
/// </remarks>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Most elements one metadata array may hold (the largest vocabularies have about 260 000 tokens).</summary>
    public const long MaxArrayElements = 16 << 20;

    /// <summary>Most dimensions of a tensor (ggml's GGML_MAX_DIMS).</summary>
    public const int MaxDims = 4;

    private readonly MappedFile _file;
    private readonly byte* _base;
    private readonly Dictionary<string, object> _metadata = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GgufTensorInfo> _tensors = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>The file.</summary>
    public string Path { get; }
    /// <summary>Its length in bytes.</summary>
    public long Length => _file.Length;
    /// <summary>The format version (2 or 3).</summary>
    public uint Version { get; }
    /// <summary>Data alignment (<c>general.alignment</c>, default 32).</summary>
    public long Alignment { get; } = 32;
    /// <summary>Start of the data section.</summary>
    public long DataStart { get; }

    /// <summary>
    /// Metadata by key: integers as <see cref="long"/> (u64 as <see cref="ulong"/>), floats as <see cref="double"/>,
    /// <see cref="bool"/>, <see cref="string"/>, and arrays as <c>long[]</c>, <c>double[]</c>, <c>bool[]</c> or <c>string[]</c>.
    /// </summary>
    public IReadOnlyDictionary<string, object> Metadata => _metadata;

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, GgufTensorInfo> Tensors => _tensors;

    /// <summary>True when <paramref name="path"/> is a regular file that starts with the GGUF magic.</summary>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            Span<byte> m = stackalloc byte[4];
            return f.ReadAtLeast(m, 4, throwOnEndOfStream: false) == 4 && BitConverter.ToUInt32(m) == Magic;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointException">Missing, not GGUF, or malformed.</exception>
    public GgufFile(string path)
    {
        Path = path;
        _file = new MappedFile(path, "GGUF", 24, "a GGUF header (24)");
        _base = _file.Base;
        try
        {
            var r = new Reader(this);
            if (r.U32("magic") != Magic) throw Error("does not start with the GGUF magic");
            Version = r.U32("version");
            if (Version is not (2 or 3)) throw Error($"GGUF version {Version} is not supported (2 and 3 are)");
            ulong tensorCount = r.U64("tensor count"), kvCount = r.U64("metadata count");
            // each metadata entry takes at least 12 bytes (empty key, type, a 1-byte value), each tensor info 24
            if (kvCount > (ulong)(Length - r.Pos) / 13) throw Error($"metadata count {kvCount} cannot fit in the {Length - r.Pos} bytes that follow");
            if (tensorCount > (ulong)(Length - r.Pos) / 24) throw Error($"tensor count {tensorCount} cannot fit in the {Length - r.Pos} bytes that follow");
            for (ulong i = 0; i < kvCount; i++)
            {
                string key = r.Str($"metadata key {i}");
                uint type = r.U32($"metadata '{key}' type");
                object value = r.Value(type, key);
                if (!_metadata.TryAdd(key, value)) throw Error($"metadata key '{key}' appears twice");
            }
            if (_metadata.TryGetValue("general.alignment", out var a))
            {
                if (a is not long al || al < 1 || al > 1 << 20 || (al & (al - 1)) != 0)
                    throw Error($"general.alignment = {a} is not a power of two in [1, 1048576]");
                Alignment = al;
            }
            var infos = new List<GgufTensorInfo>();
            for (ulong i = 0; i < tensorCount; i++) infos.Add(r.TensorInfo(i));
            DataStart = (r.Pos + Alignment - 1) / Alignment * Alignment;
            if (DataStart > Length) throw Error($"the data section would start at byte {DataStart}, past the end of the file ({Length} bytes)");
            long dataLength = Length - DataStart;
            foreach (var t in infos)
            {
                if (t.Offset % Alignment != 0) throw Error($"tensor '{t.Name}' starts at offset {t.Offset}, not a multiple of the alignment {Alignment}");
                if (t.Offset > dataLength || t.ByteLength > dataLength - t.Offset)
                    throw Error($"tensor '{t.Name}' ({t.TypeName} {ShapeText(t.Dims)}, {t.ByteLength} bytes at offset {t.Offset}) runs past the end of the data section ({dataLength} bytes)");
                if (!_tensors.TryAdd(t.Name, t)) throw Error($"tensor '{t.Name}' appears twice");
            }
            var sorted = infos.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset).ToArray();
            for (int i = 1; i < sorted.Length; i++)
                if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].ByteLength)
                    throw Error($"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap (bytes from {sorted[i].Offset})");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private CheckpointException Error(string message) => new($"{Path}: {message}");

    private static string ShapeText(long[] dims) => "[" + string.Join(", ", dims.Reverse()) + "]";

    /// <summary>The tensor named <paramref name="name"/>, if the file has it.</summary>
    public bool TryGet(string name, out GgufTensorInfo info) => _tensors.TryGetValue(name, out info!);

    /// <summary>Bytes <c>[offset, offset + length)</c> of a tensor's data, as a view on the map (valid until disposed).</summary>
    public ReadOnlySpan<byte> Bytes(GgufTensorInfo t, long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset + length > t.ByteLength)
            throw Error($"read of bytes [{offset}, {offset + length}) outside tensor '{t.Name}' ({t.ByteLength} bytes)");
        return new ReadOnlySpan<byte>(_base + DataStart + t.Offset + offset, length);
    }

    /// <summary>Drops a tensor's mapped pages from the resident set once a rank has copied its slice (see <see cref="SafetensorsFile.Release"/>).</summary>
    public void Release(GgufTensorInfo t)
    {
        if (!_disposed) _file.Release(DataStart + t.Offset, t.ByteLength);
    }

    /// <summary>A string metadata value, or null when absent.</summary>
    public string? String(string key) => _metadata.TryGetValue(key, out var v) ? v as string ?? throw Error($"metadata '{key}' is {Describe(v)}, expected a string") : null;

    /// <summary>An integer metadata value in [<paramref name="min"/>, <paramref name="max"/>], or null when absent.</summary>
    public long? Int(string key, long min, long max)
    {
        if (!_metadata.TryGetValue(key, out var v)) return null;
        long x = v switch
        {
            long l => l,
            ulong u when u <= long.MaxValue => (long)u,
            _ => throw Error($"metadata '{key}' is {Describe(v)}, expected an integer"),
        };
        if (x < min || x > max) throw Error($"metadata '{key}' = {x} is outside [{min}, {max}]");
        return x;
    }

    /// <summary>A numeric metadata value, or null when absent.</summary>
    public double? Number(string key) => _metadata.TryGetValue(key, out var v)
        ? v switch { double d => d, long l => l, ulong u => u, _ => throw Error($"metadata '{key}' is {Describe(v)}, expected a number") }
        : null;

    /// <summary>A boolean metadata value, or null when absent.</summary>
    public bool? Bool(string key) => _metadata.TryGetValue(key, out var v) ? v as bool? ?? throw Error($"metadata '{key}' is {Describe(v)}, expected a boolean") : null;

    /// <summary>An array metadata value of type <typeparamref name="T"/>[], or null when absent.</summary>
    public T[]? Array<T>(string key) => _metadata.TryGetValue(key, out var v)
        ? v as T[] ?? throw Error($"metadata '{key}' is {Describe(v)}, expected an array of {typeof(T).Name}")
        : null;

    private static string Describe(object v) => v switch
    {
        string => "a string",
        long or ulong => "an integer",
        double => "a float",
        bool => "a boolean",
        System.Array a => $"an array of {a.Length} {a.GetType().GetElementType()!.Name}",
        _ => v.GetType().Name,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Dispose();
    }

    // reads the header from the map, checking every length against the bytes that remain
    private ref struct Reader(GgufFile f)
    {
        public long Pos = 0;

        private void Need(long n, string what)
        {
            if (n < 0 || n > f.Length - Pos) throw f.Error($"{what} needs {n} bytes at offset {Pos}, but the file ends at {f.Length}");
        }

        public uint U32(string what)
        {
            Need(4, what);
            uint v = *(uint*)(f._base + Pos);
            Pos += 4;
            return v;
        }

        public ulong U64(string what)
        {
            Need(8, what);
            ulong v = *(ulong*)(f._base + Pos);
            Pos += 8;
            return v;
        }

        public string Str(string what)
        {
            ulong n = U64(what + " length");
            if (n > (ulong)(f.Length - Pos)) throw f.Error($"{what}: string length {n} runs past the end of the file ({f.Length - Pos} bytes remain)");
            var bytes = new ReadOnlySpan<byte>(f._base + Pos, (int)Math.Min(n, int.MaxValue));
            if (n > int.MaxValue) throw f.Error($"{what}: string length {n} is too long");
            Pos += (long)n;
            try
            {
                return Strict.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw f.Error($"{what}: a string at offset {Pos - (long)n} is not valid UTF-8");
            }
        }

        private static readonly UTF8Encoding Strict = new(false, true);

        public object Value(uint type, string key)
        {
            string what = $"metadata '{key}'";
            switch (type)
            {
                case 0: Need(1, what); return (long)f._base[Pos++];
                case 1: Need(1, what); return (long)(sbyte)f._base[Pos++];
                case 2: Need(2, what); Pos += 2; return (long)*(ushort*)(f._base + Pos - 2);
                case 3: Need(2, what); Pos += 2; return (long)*(short*)(f._base + Pos - 2);
                case 4: return (long)U32(what);
                case 5: return (long)(int)U32(what);
                case 6: { uint u = U32(what); return (double)BitConverter.UInt32BitsToSingle(u); }
                case 7:
                    Need(1, what);
                    byte b = f._base[Pos++];
                    return b switch { 0 => false, 1 => true, _ => throw f.Error($"{what}: boolean byte {b} is neither 0 nor 1") };
                case 8: return Str(what);
                case 9: return Array(key);
                case 10: return U64(what);
                case 11: return (long)U64(what);
                case 12: return BitConverter.UInt64BitsToDouble(U64(what));
                default: throw f.Error($"{what} has value type {type}, not a GGUF type (0–12)");
            }
        }

        private object Array(string key)
        {
            string what = $"metadata '{key}'";
            uint type = U32(what + " element type");
            ulong count = U64(what + " element count");
            long minBytes = type switch { 0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, 8 or 10 or 11 or 12 => 8, 9 => 12, _ => 1 };
            if (type == 9) throw f.Error($"{what} is an array of arrays, which TpLlm does not read");
            if (type > 12) throw f.Error($"{what} has element type {type}, not a GGUF type (0–12)");
            if (count > (ulong)MaxArrayElements) throw f.Error($"{what} claims {count} elements, more than the {MaxArrayElements} allowed");
            if ((long)count * minBytes > f.Length - Pos)
                throw f.Error($"{what} claims {count} elements, which cannot fit in the {f.Length - Pos} bytes that remain");
            int n = (int)count;
            switch (type)
            {
                case 8:
                {
                    var s = new string[n];
                    for (int i = 0; i < n; i++) s[i] = Str($"{what}[{i}]");
                    return s;
                }
                case 6 or 12:
                {
                    var d = new double[n];
                    for (int i = 0; i < n; i++) d[i] = (double)Value(type, key);
                    return d;
                }
                case 7:
                {
                    var b = new bool[n];
                    for (int i = 0; i < n; i++) b[i] = (bool)Value(type, key);
                    return b;
                }
                default:
                {
                    var l = new long[n];
                    for (int i = 0; i < n; i++) l[i] = Value(type, key) switch { ulong u => (long)u, var v => (long)v };
                    return l;
                }
            }
        }

        public GgufTensorInfo TensorInfo(ulong index)
        {
            string name = Str($"tensor {index} name");
            uint dims = U32($"tensor '{name}' dimension count");
            if (dims < 1 || dims > MaxDims) throw f.Error($"tensor '{name}' has {dims} dimensions (1–{MaxDims} allowed)");
            var ne = new long[dims];
            long elements = 1;
            for (int d = 0; d < dims; d++)
            {
                ulong n = U64($"tensor '{name}' dimension {d}");
                if (n > long.MaxValue / 2) throw f.Error($"tensor '{name}' dimension {d} is {n}");
                ne[d] = (long)n;
                elements = ne[d] == 0 || elements <= long.MaxValue / ne[d] ? elements * ne[d] : throw f.Error($"tensor '{name}' has more elements than a file can hold ({ShapeText(ne)})");
            }
            uint type = U32($"tensor '{name}' type");
            ulong offset = U64($"tensor '{name}' offset");
            if (!GgmlType.TryGet(type, out var typeName, out int blockElements, out int blockBytes))
                throw f.Error($"tensor '{name}' has ggml type {type}, which ggml does not define");
            if (ne[0] % blockElements != 0)
                throw f.Error($"tensor '{name}' is {typeName} with rows of {ne[0]} elements, not a multiple of its block of {blockElements}");
            long blocks = elements / blockElements;
            if (blocks > long.MaxValue / blockBytes) throw f.Error($"tensor '{name}' is larger than a file can hold");
            if (offset > long.MaxValue) throw f.Error($"tensor '{name}' offset {offset} is too large");
            return new GgufTensorInfo(name, type, ne, (long)offset, blocks * blockBytes);
        }
    }
}
