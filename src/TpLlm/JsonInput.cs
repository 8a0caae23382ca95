using System.Text.Json;

namespace TpLlm;

/// <summary>Parses an input file's JSON, turning every parser failure into the caller's exception type.</summary>
internal static class JsonInput
{
    /// <summary>
    /// Parses <paramref name="bytes"/> (from <paramref name="path"/>) with nesting limited to
    /// <paramref name="maxDepth"/> and hands the root to <paramref name="read"/>; malformed JSON and
    /// malformed values (e.g. lone surrogates) become <paramref name="error"/>(message, cause).
    /// </summary>
    public static T Read<T>(string path, ReadOnlySpan<byte> bytes, int maxDepth, Func<JsonElement, T> read, Func<string, Exception, TpLlmException> error)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes.ToArray(), new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw error($"{path}: not valid JSON ({bytes.Length} bytes): {e.Message}", e);
        }
        using (doc)
        {
            try
            {
                return read(doc.RootElement);
            }
            catch (InvalidOperationException e)
            {
                throw error($"{path}: malformed JSON value: {e.Message}", e);
            }
        }
    }
}
