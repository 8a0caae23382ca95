using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace TpLlm.Server;

/// <summary>Reads a request body as a JSON object; anything else is a 400 that says what was wrong.</summary>
internal static class RequestBody
{
    public static async Task<JsonDocument> ReadAsync(HttpContext ctx)
    {
        // JSON, or no Content-Type at all; a form, text or anything else is refused as OpenAI's API refuses it
        if (ctx.Request.ContentType is { Length: > 0 } type && !IsJson(type))
            throw new ApiException(415, $"Content-Type '{type}' is not supported; send the body as application/json (curl: -H 'Content-Type: application/json')");
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { MaxDepth = 64 }, ctx.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}");
        }
        var kind = doc.RootElement.ValueKind;
        if (kind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw ApiException.BadRequest($"the request body must be a JSON object, not {kind}");
        }
        return doc;
    }

    private static bool IsJson(string contentType)
    {
        var media = contentType.Split(';')[0].Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }
}
