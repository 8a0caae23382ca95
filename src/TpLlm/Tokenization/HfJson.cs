using System.Text.Json;

namespace TpLlm.Tokenization;

/// <summary>Looks up the typed components (<c>{"type": …}</c>, possibly nested in sequences) of a <c>tokenizer.json</c>.</summary>
internal static class HfJson
{
    /// <summary>True when <c>root[property]</c> is or contains a component of <paramref name="type"/>.</summary>
    public static bool Mentions(JsonElement root, string property, string type) => Find(root, property, type) is not null;

    /// <summary>The first component of <paramref name="type"/> in <c>root[property]</c>, or null.</summary>
    public static JsonElement? Find(JsonElement root, string property, string type) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(property, out var e) ? Find(e, type) : null;

    private static JsonElement? Find(JsonElement e, string type)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                if (e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type) return e;
                foreach (var p in e.EnumerateObject())
                    if (Find(p.Value, type) is { } found) return found;
                return null;
            case JsonValueKind.Array:
                foreach (var x in e.EnumerateArray())
                    if (Find(x, type) is { } found) return found;
                return null;
            default:
                return null;
        }
    }
}
