using System.Text;
using System.Text.Json;

namespace TpLlm.Tests;

/// <summary>Writes small safetensors files for tests (valid, or deliberately broken via a raw header).</summary>
internal static class SafetensorsWriter
{
    public sealed record Entry(string Name, string DType, long[] Shape, byte[] Data);

    public static void Write(string path, IEnumerable<Entry> entries)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        var list = entries.ToList();
        foreach (var e in list)
        {
            header[e.Name] = new { dtype = e.DType, shape = e.Shape, data_offsets = new[] { offset, offset + e.Data.Length } };
            offset += e.Data.Length;
        }
        WriteRaw(path, JsonSerializer.Serialize(header), list.SelectMany(e => e.Data).ToArray());
    }

    public static void WriteRaw(string path, string headerJson, byte[] data, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredLength ?? (ulong)h.Length));
        fs.Write(h);
        fs.Write(data);
    }

    public static byte[] Bf16(float[] values)
    {
        var b = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(b.AsSpan(i * 2), TpLlm.Tensors.Bf16.FromF32(values[i]));
        return b;
    }

    public static byte[] F32(float[] values)
    {
        var b = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, b, 0, b.Length);
        return b;
    }
}
