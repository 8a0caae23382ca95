using System.Text;
using System.Text.Json;

namespace TpLlm.Checkpoints;

/// <summary>Writes safetensors files: a JSON header of names, types, shapes and offsets, then each tensor's bytes.</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// One tensor to write: its bytes come from <paramref name="Write"/>, called once, in order, when the file reaches
    /// them — so a writer can make each tensor as it goes (quantize it) instead of holding every one.
    /// </summary>
    public readonly record struct Entry(string Name, DType DType, long[] Shape, Action<Stream> Write)
    {
        /// <summary>Elements × element size.</summary>
        public long Bytes => Shape.Aggregate(1L, (a, b) => a * b) * DType.Size();
    }

    /// <summary>Writes <paramref name="tensors"/> (name, shape, data) as F32 to <paramref name="path"/>.</summary>
    public static void WriteF32(string path, IEnumerable<(string Name, long[] Shape, float[] Data)> tensors) =>
        Write(path, [.. tensors.Select(t =>
        {
            long n = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (n != t.Data.Length) throw new TpLlmException($"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] holds {n} elements, data has {t.Data.Length}");
            return new Entry(t.Name, DType.F32, t.Shape, s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Data.AsSpan())));
        })]);

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/>, with <paramref name="metadata"/> as the header's <c>__metadata__</c>.</summary>
    /// <exception cref="TpLlmException">A type safetensors cannot hold, or an entry wrote a different number of bytes than its shape takes.</exception>
    public static void Write(string path, IReadOnlyList<Entry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var t in tensors)
        {
            var dtype = t.DType.SafetensorsName() ?? throw new TpLlmException($"tensor '{t.Name}': {t.DType} has no safetensors type");
            header[t.Name] = new { dtype, shape = t.Shape, data_offsets = new[] { offset, offset + t.Bytes } };
            offset += t.Bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8; // keep the data section 8-byte aligned
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        fs.Write(BitConverter.GetBytes((ulong)(json.Length + pad)));
        fs.Write(json);
        for (int i = 0; i < pad; i++) fs.WriteByte((byte)' ');
        foreach (var t in tensors)
        {
            long start = fs.Position;
            t.Write(fs);
            if (fs.Position - start != t.Bytes)
                throw new TpLlmException($"{path}: tensor '{t.Name}' wrote {fs.Position - start} bytes, its shape [{string.Join(", ", t.Shape)}] of {t.DType} takes {t.Bytes}");
        }
    }
}
