using System.Text.Json;

namespace TpLlm.Checkpoints;

/// <summary>Parses and validates the JSON header of a safetensors file.</summary>
internal static class SafetensorsHeader
{
    public static (Dictionary<string, TensorInfo>, IReadOnlyDictionary<string, string>) Parse(
        string path, ReadOnlySpan<byte> header, long dataLength) =>
        JsonInput.Read(path, header.ToArray(), 16, root => ParseRoot(path, root, dataLength), (m, e) => new CheckpointException(m, e));

    private static (Dictionary<string, TensorInfo>, IReadOnlyDictionary<string, string>) ParseRoot(string path, JsonElement root, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{path}: header is a JSON {root.ValueKind}, expected an object");
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        foreach (var prop in root.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (sawMetadata) throw new CheckpointException($"{path}: duplicate key '__metadata__' in header");
                sawMetadata = true;
                ParseMetadata(path, prop.Value, metadata);
                continue;
            }
            if (tensors.ContainsKey(prop.Name))
                throw new CheckpointException($"{path}: tensor '{prop.Name}' is declared twice in the header");
            tensors[prop.Name] = ParseTensor(path, prop.Name, prop.Value, dataLength);
        }
        CheckOverlaps(path, tensors.Values);
        return (tensors, metadata);
    }

    private static void ParseMetadata(string path, JsonElement e, Dictionary<string, string> metadata)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{path}: '__metadata__' is a JSON {e.ValueKind}, expected an object of strings");
        foreach (var m in e.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException($"{path}: '__metadata__.{m.Name}' is a JSON {m.Value.ValueKind}, expected a string");
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement e, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{where}: entry is a JSON {e.ValueKind}, expected an object");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new CheckpointException($"{where}: missing or non-string 'dtype'");
        var dtypeText = dtypeEl.GetString()!;
        var dtype = DTypes.Parse(dtypeText)
            ?? throw new CheckpointException($"{where}: unknown dtype '{dtypeText}' (supported: BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL)");
        if (!e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new CheckpointException($"{where}: missing or non-array 'shape'");
        var shape = new long[shapeEl.GetArrayLength()];
        if (shape.Length > 8) throw new CheckpointException($"{where}: shape has {shape.Length} dimensions, at most 8 are supported");
        long elements = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw new CheckpointException($"{where}: shape dimension {i} is '{d}', expected a non-negative integer");
            shape[i++] = dim;
            elements = dim == 0 ? 0 : (elements > long.MaxValue / dim ? -1 : elements * dim);
            if (elements < 0) throw new CheckpointException($"{where}: shape {Show(shape)} overflows 64 bits");
        }
        if (!e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new CheckpointException($"{where}: 'data_offsets' must be an array of two integers");
        if (!offEl[0].TryGetInt64OrFail(out var begin) || !offEl[1].TryGetInt64OrFail(out var end))
            throw new CheckpointException($"{where}: 'data_offsets' {offEl} are not integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw new CheckpointException(
                $"{where}: data_offsets [{begin}, {end}] out of range; the data section is {dataLength} bytes");
        long expected = elements > long.MaxValue / dtype.Size() ? -1 : elements * dtype.Size();
        if (expected != end - begin)
            throw new CheckpointException(
                $"{where}: {end - begin} bytes in data_offsets [{begin}, {end}] but {dtype} × {Show(shape)} needs {(expected < 0 ? "more than 2^63" : expected.ToString())} bytes");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static bool TryGetInt64OrFail(this JsonElement e, out long value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value);
    }

    private static void CheckOverlaps(string path, IEnumerable<TensorInfo> tensors)
    {
        TensorInfo? prev = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin))
        {
            if (prev is not null && t.Begin < prev.End)
                throw new CheckpointException(
                    $"{path}: tensors '{prev.Name}' [{prev.Begin}, {prev.End}) and '{t.Name}' [{t.Begin}, {t.End}) overlap");
            prev = t;
        }
    }

    private static string Show(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
