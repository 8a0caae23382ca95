using System.Text.Json;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>How one endpoint shapes its JSON: a whole response, or the chunks of a stream.</summary>
internal interface IResponseFormat
{
    /// <summary>"cmpl-" or "chatcmpl-".</summary>
    string IdPrefix { get; }

    /// <summary>The non-streaming response's object fields after id/object/created/model: choices, the i-th result as index i (usage is written by the caller).</summary>
    void WriteChoices(Utf8JsonWriter w, IReadOnlyList<TextResult> results);

    /// <summary>A stream chunk's choices: choice <paramref name="index"/>'s text in <paramref name="delta"/> (null for the first or last chunk) and its finish reason.</summary>
    void WriteChunkChoices(Utf8JsonWriter w, int index, TextDelta? delta, string? finishReason, bool first);

    /// <summary>"text_completion" or "chat.completion".</summary>
    string ObjectName { get; }

    /// <summary>"text_completion" or "chat.completion.chunk".</summary>
    string ChunkObjectName { get; }
}
