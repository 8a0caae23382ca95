using System.Text.Json;

namespace TpLlm.Server;

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal static class ErrorWriter
{
    public static void Body(Utf8JsonWriter w, string message, string type, string? param, string? code)
    {
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", type);
        if (param is null) w.WriteNull("param"); else w.WriteString("param", param);
        if (code is null) w.WriteNull("code"); else w.WriteString("code", code);
        w.WriteEndObject();
    }
}
