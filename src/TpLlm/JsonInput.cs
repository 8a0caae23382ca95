using System.Text.Json;
using TpLlm.IO;

namespace TpLlm;

/// <summary>Parses an input file's JSON, turning every parser failure into the caller's exception type.</summary>
internal static class JsonInput
{
    /// <summary>Largest config-like JSON file read (config.json, generation_config.json, tokenizer_config.json): real ones are kilobytes.</summary>
    public const long MaxConfigBytes = 16 << 20;

    /// <summary>Largest tokenizer.json read (the largest real ones, e.g. Gemma's, are about 35 MB).</summary>
    public const long MaxTokenizerBytes = 512 << 20;

    /// <summary>Largest safetensors index read (a weight map of 100 000 tensors is about 10 MB).</summary>
    public const long MaxIndexBytes = 128 << 20;

    /// <summary>
    /// Reads the regular file <paramref name="path"/> (at most <paramref name="maxBytes"/>) and parses it like
    /// <see cref="Read{T}"/>.
    /// </summary>
    public static T ReadFile<T>(string path, long maxBytes, int maxDepth, Func<JsonElement, T> read, Func<string, Exception?, TpLlmException> error) =>
        Read(path, InputFile.ReadAll(path, maxBytes, m => error(m, null)), maxDepth, read, error);

    /// <summary>
    /// Parses <paramref name="bytes"/> (from <paramref name="path"/>) in place, with nesting limited to
    /// <paramref name="maxDepth"/>, and hands the root to <paramref name="read"/>; malformed JSON and
    /// malformed values (e.g. lone surrogates) become <paramref name="error"/>(message, cause).
    /// </summary>
    public static T Read<T>(string path, ReadOnlyMemory<byte> bytes, int maxDepth, Func<JsonElement, T> read, Func<string, Exception?, TpLlmException> error)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = maxDepth });
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
