using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace TpLlm.Server;

/// <summary>Reads a request body as a JSON object; anything else is a 400 that says what was wrong.</summary>
internal static class RequestBody
{
    public static async Task<JsonDocument> ReadAsync(HttpContext ctx)
    {
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
}
