using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary><c>POST /v1/completions</c>: prompts (text or token ids) continued, n choices each; choice index = prompt · n + i.</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, InferenceEngine engine)
    {
        using var doc = await RequestBody.ReadAsync(ctx);
        var f = new JsonFields(doc.RootElement);
        var p = RequestParams.Read(f, engine.ModelId, engine.Folder.Config.VocabSize);
        int[][] prompts = ReadPrompts(f, engine);
        if (prompts.Length * p.N > RequestParams.MaxChoices)
            throw ApiException.BadRequest($"{prompts.Length} prompts × n {p.N} = {prompts.Length * p.N} choices; at most {RequestParams.MaxChoices} per request", "n");
        int? logprobs = f.Int("logprobs", 0, 20);
        int maxTokens = f.Int("max_tokens", int.MinValue, int.MaxValue) ?? 16;
        if (maxTokens < 1) throw ApiException.BadRequest($"max_tokens {maxTokens} must be ≥ 1", "max_tokens");
        var requests = prompts.SelectMany(ids => Enumerable.Range(0, p.N).Select(i => new TextRequest
        {
            PromptIds = ids, MaxTokens = maxTokens, Sampling = p.ForChoice(i), Stop = p.Stop,
            TopLogprobs = logprobs, IgnoreEos = p.IgnoreEos, StopTokenIds = p.StopTokenIds, ResponseFormat = p.Format,
        })).ToArray();
        await GenerationRunner.RunAsync(ctx, engine, requests, p.N, new CompletionFormat(logprobs is not null, engine.Tokenizer, requests.Length), p);
    }

    // "text", [1, 2, 3], or an array of prompts: ["text", …] or [[1, 2, 3], …]
    private static int[][] ReadPrompts(JsonFields f, InferenceEngine engine)
    {
        if (f.Get("prompt") is not { } v) throw ApiException.BadRequest("prompt is missing", "prompt");
        if (v.ValueKind == JsonValueKind.String) return [engine.Encode(v.GetString()!)];
        if (v.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong("prompt", v, "a string, an array of token ids, or an array of prompts");
        int n = v.GetArrayLength();
        if (n == 0) throw ApiException.BadRequest("prompt is an empty array", "prompt");
        if (v[0].ValueKind is not (JsonValueKind.String or JsonValueKind.Array)) return [JsonFields.TokenIds(v, "prompt")];
        var prompts = new int[n][];
        for (int i = 0; i < n; i++)
        {
            var item = v[i];
            prompts[i] = item.ValueKind switch
            {
                JsonValueKind.String => engine.Encode(item.GetString()!),
                JsonValueKind.Array => JsonFields.TokenIds(item, $"prompt[{i}]"),
                _ => throw JsonFields.Wrong($"prompt[{i}]", item, "a string or an array of token ids, like prompt[0]"),
            };
        }
        return prompts;
    }
}
