using System.Text;
using System.Text.Json;

namespace TpLlm.Checkpoints;

/// <summary>Writes f32 tensors to a safetensors file.</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (name, shape, data) to <paramref name="path"/>.</summary>
    public static void WriteF32(string path, IEnumerable<(string Name, long[] Shape, float[] Data)> tensors)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape, data) in list)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            if (n != data.Length) throw new TpLlmException($"tensor '{name}': shape [{string.Join(", ", shape)}] holds {n} elements, data has {data.Length}");
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + data.Length * 4L } };
            offset += data.Length * 4L;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8; // keep the data section 8-byte aligned
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)(json.Length + pad)));
        fs.Write(json);
        for (int i = 0; i < pad; i++) fs.WriteByte((byte)' ');
        foreach (var (_, _, data) in list) fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
    }
}
