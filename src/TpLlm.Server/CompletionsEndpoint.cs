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
        var prompts = ReadPrompts(f, engine);
        if (prompts.Length * p.N > RequestParams.MaxChoices)
            throw ApiException.BadRequest($"{prompts.Length} prompts × n {p.N} = {prompts.Length * p.N} choices; at most {RequestParams.MaxChoices} per request", "n");
        if (f.String("suffix") is { Length: > 0 }) throw ApiException.BadRequest("suffix is not supported (no fill-in-the-middle)", "suffix");
        int? logprobs = f.Int("logprobs", 0, 20);
        bool echo = f.Bool("echo") ?? false;
        int maxTokens = f.Int("max_tokens", int.MinValue, int.MaxValue) ?? 16;
        if (maxTokens < (echo ? 0 : 1)) throw ApiException.BadRequest($"max_tokens {maxTokens} must be ≥ {(echo ? "0" : "1 (0 only with echo)")}", "max_tokens");
        // echo with logprobs scores the prompt; echo alone with max_tokens 0 runs the prompt through the model too (and shows no scores);
        // vLLM's prompt_logprobs asks for the scores as their own field
        int? promptTop = f.Int("prompt_logprobs", 0, 20);
        int? promptLogprobs = echo && (logprobs is not null || maxTokens == 0) ? Math.Max(logprobs ?? 0, promptTop ?? 0) : promptTop;
        var requests = prompts.SelectMany(prompt => Enumerable.Range(0, p.N).Select(i => new TextRequest
        {
            PromptIds = prompt.Ids, MaxTokens = maxTokens, Sampling = p.ForChoice(i), Stop = p.Stop,
            TopLogprobs = logprobs, IgnoreEos = p.IgnoreEos, StopTokenIds = p.StopTokenIds, ResponseFormat = p.Format, PromptLogprobs = promptLogprobs,
            SkipSpecialTokens = p.SkipSpecialTokens,
        })).ToArray();
        string?[] echoes = [.. prompts.SelectMany(prompt => Enumerable.Repeat(echo ? prompt.Text ?? Decode(prompt.Ids, engine) : null, p.N))];
        await GenerationRunner.RunAsync(ctx, engine, requests, p.N, new CompletionFormat(logprobs, engine.Tokenizer, echoes, promptTop), p);
    }

    // "text", [1, 2, 3], or an array of prompts: ["text", …] or [[1, 2, 3], …]; a text prompt is what echo repeats
    private static (int[] Ids, string? Text)[] ReadPrompts(JsonFields f, InferenceEngine engine)
    {
        if (f.Get("prompt") is not { } v) throw ApiException.BadRequest("prompt is missing", "prompt");
        if (v.ValueKind == JsonValueKind.String) return [FromText(v.GetString()!, engine)];
        if (v.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong("prompt", v, "a string, an array of token ids, or an array of prompts");
        int n = v.GetArrayLength();
        if (n == 0) throw ApiException.BadRequest("prompt is an empty array", "prompt");
        int vocab = engine.Folder.Config.VocabSize;
        if (v[0].ValueKind is not (JsonValueKind.String or JsonValueKind.Array)) return [(JsonFields.TokenIds(v, "prompt", vocab), null)];
        var prompts = new (int[], string?)[n];
        for (int i = 0; i < n; i++)
        {
            var item = v[i];
            prompts[i] = item.ValueKind switch
            {
                JsonValueKind.String => FromText(item.GetString()!, engine),
                JsonValueKind.Array => (JsonFields.TokenIds(item, $"prompt[{i}]", vocab), null),
                _ => throw JsonFields.Wrong($"prompt[{i}]", item, "a string or an array of token ids, like prompt[0]"),
            };
        }
        return prompts;
    }

    private static (int[], string?) FromText(string text, InferenceEngine engine) => (engine.Encode(text), text);

    // echo of a token-id prompt: its text
    private static string Decode(int[] ids, InferenceEngine engine)
    {
        try
        {
            return engine.Tokenizer.Decode(ids);
        }
        catch (Tokenization.TokenizerException e)
        {
            throw ApiException.BadRequest($"echo: {e.Message}", "prompt");
        }
    }
}
