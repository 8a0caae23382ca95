using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary><c>POST /v1/completions</c>: a prompt (text or token ids) continued.</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, InferenceEngine engine)
    {
        using var doc = await RequestBody.ReadAsync(ctx);
        var f = new JsonFields(doc.RootElement);
        var p = RequestParams.Read(f, engine.ModelId);
        int[] ids = ReadPrompt(f, engine);
        int? logprobs = f.Int("logprobs", 0, 20);
        int maxTokens = f.Int("max_tokens", int.MinValue, int.MaxValue) ?? 16;
        if (maxTokens < 1) throw ApiException.BadRequest($"max_tokens {maxTokens} must be ≥ 1", "max_tokens");
        var request = new TextRequest
        {
            PromptIds = ids, MaxTokens = maxTokens, Sampling = p.Sampling, Stop = p.Stop,
            TopLogprobs = logprobs, IgnoreEos = p.IgnoreEos,
        };
        await GenerationRunner.RunAsync(ctx, engine, request, new CompletionFormat(logprobs is not null, engine.Tokenizer), p);
    }

    // "text", ["text"], [1, 2, 3] or [[1, 2, 3]]
    private static int[] ReadPrompt(JsonFields f, InferenceEngine engine)
    {
        if (f.Get("prompt") is not { } v) throw ApiException.BadRequest("prompt is missing", "prompt");
        if (v.ValueKind == JsonValueKind.String) return engine.Encode(v.GetString()!);
        if (v.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong("prompt", v, "a string, an array of token ids, or an array with one string");
        int n = v.GetArrayLength();
        if (n == 0) throw ApiException.BadRequest("prompt is an empty array", "prompt");
        var firstItem = v[0];
        if (firstItem.ValueKind is JsonValueKind.String or JsonValueKind.Array)
        {
            if (n != 1) throw ApiException.BadRequest($"prompt holds {n} prompts; this server takes one prompt per request", "prompt");
            return firstItem.ValueKind == JsonValueKind.String ? engine.Encode(firstItem.GetString()!) : Ids(firstItem);
        }
        return Ids(v);
    }

    private static int[] Ids(JsonElement v)
    {
        var ids = new int[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray())
            ids[i++] = e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) ? id : throw JsonFields.Wrong("prompt", e, "a token id (in the array)");
        return ids;
    }
}
