using System.Text.Json;

namespace TpLlm.Server;

/// <summary>
/// Typed reads of a request body's fields; a wrong type or range is a 400 naming the field and the value.
/// Fields of a nested object (a message) are named <paramref name="prefix"/> + name (<c>messages[0].role</c>) and
/// reported as <paramref name="param"/> (<c>messages</c>).
/// </summary>
internal sealed class JsonFields(JsonElement root, string prefix = "", string? param = null)
{
    public JsonElement Root { get; } = root;

    private ApiException Wrong(string name, JsonElement v, string expected) => Wrong(prefix + name, v, expected, param ?? name);

    public bool Has(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(name, v, "a string");
    }

    public bool? Bool(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Wrong(name, v, "true or false") };
    }

    public int? Int(string name, int min, int max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long l)) throw Wrong(name, v, "an integer");
        if (l < min || l > max) throw ApiException.BadRequest($"{prefix}{name} {l} is outside [{min}, {max}]", param ?? name);
        return (int)l;
    }

    public long? Long(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw Wrong(name, v, "an integer");
    }

    public float? Float(string name, float min, float max, bool minExclusive = false)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d)) throw Wrong(name, v, "a number");
        if (d > max || d < min || (minExclusive && d == min))
            throw ApiException.BadRequest($"{prefix}{name} {d} is outside {(minExclusive ? "(" : "[")}{min}, {(float.IsPositiveInfinity(max) ? "∞)" : $"{max}]")}", param ?? name);
        return (float)d;
    }

    /// <summary><c>stop</c>: a string or up to 16 strings.</summary>
    public string[] Stop()
    {
        if (Get("stop") is not { } v) return [];
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) throw Wrong("stop", v, "a string or an array of strings");
        var stops = new List<string>();
        foreach (var s in v.EnumerateArray())
            stops.Add(s.ValueKind == JsonValueKind.String ? s.GetString()! : throw Wrong("stop", s, "a string (in the array)"));
        if (stops.Count > 16) throw ApiException.BadRequest($"stop has {stops.Count} strings; at most 16 are allowed", "stop");
        return [.. stops];
    }

    /// <summary>An array of token ids, each below <paramref name="vocabSize"/>; errors name <paramref name="name"/>.</summary>
    public static int[] TokenIds(JsonElement v, string name, int vocabSize = int.MaxValue)
    {
        if (v.ValueKind != JsonValueKind.Array) throw Wrong(name, v, "an array of token ids");
        var ids = new int[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int id)) throw Wrong(name, e, "a token id (in the array)", name.Split('[')[0]);
            if ((uint)id >= (uint)vocabSize) throw ApiException.BadRequest($"token id {id} in {name} is outside the vocabulary [0, {vocabSize})", name.Split('[')[0]);
            ids[i++] = id;
        }
        return ids;
    }

    public static ApiException Wrong(string name, JsonElement v, string expected, string? param = null)
    {
        var raw = v.GetRawText();
        return ApiException.BadRequest($"{name} must be {expected}, not {(raw.Length > 40 ? raw[..40] + "…" : raw)}", param ?? name);
    }
}
