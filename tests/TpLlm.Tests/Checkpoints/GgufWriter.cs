using System.Text;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// Writes GGUF files for tests, following the format's specification (ggml's docs/gguf.md): version 3, little-endian,
/// metadata then tensor infos, data aligned to 32 bytes. Values are written as given, so a test can also lie.
/// </summary>
internal sealed class GgufWriter
{
    public const uint TypeU32 = 4, TypeI32 = 5, TypeF32 = 6, TypeBool = 7, TypeString = 8, TypeArray = 9, TypeU64 = 10;

    private readonly List<(string Key, uint Type, object Value)> _metadata = [];
    private readonly List<(string Name, uint Type, long[] Dims, byte[] Data)> _tensors = [];

    public GgufWriter Add(string key, uint type, object value)
    {
        _metadata.Add((key, type, value));
        return this;
    }

    public GgufWriter String(string key, string value) => Add(key, TypeString, value);
    public GgufWriter U32(string key, uint value) => Add(key, TypeU32, value);
    public GgufWriter F32(string key, float value) => Add(key, TypeF32, value);
    public GgufWriter Bool(string key, bool value) => Add(key, TypeBool, value);
    public GgufWriter Strings(string key, string[] values) => Add(key, TypeArray, (TypeString, (object)values));
    public GgufWriter Ints(string key, int[] values) => Add(key, TypeArray, (TypeI32, (object)values));
    public GgufWriter Floats(string key, float[] values) => Add(key, TypeArray, (TypeF32, (object)values));

    /// <summary>A tensor with ggml dimensions <paramref name="dims"/> (innermost first) and its raw data.</summary>
    public GgufWriter Tensor(string name, uint ggmlType, long[] dims, byte[] data)
    {
        _tensors.Add((name, ggmlType, dims, data));
        return this;
    }

    public void Write(string path)
    {
        using var fs = File.Create(path);
        using var w = new BinaryWriter(fs);
        w.Write(0x46554747u);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, type, value) in _metadata)
        {
            Str(w, key);
            w.Write(type);
            Value(w, type, value);
        }
        long offset = 0;
        var offsets = new List<long>();
        foreach (var t in _tensors)
        {
            offsets.Add(offset);
            offset = Align(offset + t.Data.Length);
        }
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            Str(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (var d in t.Dims) w.Write((ulong)d);
            w.Write(t.Type);
            w.Write((ulong)offsets[i]);
        }
        w.Flush();
        Pad(w, Align(fs.Position) - fs.Position);
        long dataStart = fs.Position;
        for (int i = 0; i < _tensors.Count; i++)
        {
            Pad(w, dataStart + offsets[i] - fs.Position);
            w.Write(_tensors[i].Data);
        }
    }

    private static long Align(long x) => (x + 31) / 32 * 32;

    private static void Pad(BinaryWriter w, long n)
    {
        for (long i = 0; i < n; i++) w.Write((byte)0);
    }

    private static void Str(BinaryWriter w, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void Value(BinaryWriter w, uint type, object value)
    {
        switch (type)
        {
            case TypeU32: w.Write((uint)value); break;
            case TypeI32: w.Write((int)value); break;
            case TypeF32: w.Write((float)value); break;
            case TypeBool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case TypeString: Str(w, (string)value); break;
            case TypeU64: w.Write((ulong)value); break;
            case TypeArray:
                var (elementType, items) = ((uint, object))value;
                w.Write(elementType);
                var array = (Array)items;
                w.Write((ulong)array.Length);
                foreach (var item in array) Value(w, elementType, item);
                break;
            default: throw new ArgumentException($"type {type}");
        }
    }
}
