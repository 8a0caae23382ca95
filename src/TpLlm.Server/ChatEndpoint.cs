using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TpLlm.Chat;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary><c>POST /v1/chat/completions</c>: a conversation rendered with the model's chat template, then continued.</summary>
internal static class ChatEndpoint
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool"];

    public static async Task HandleAsync(HttpContext ctx, InferenceEngine engine)
    {
        using var doc = await RequestBody.ReadAsync(ctx);
        var f = new JsonFields(doc.RootElement);
        var p = RequestParams.Read(f, engine.ModelId, engine.Folder.Config.VocabSize);
        if (f.Bool("echo") == true) throw ApiException.BadRequest("echo is not supported in chat completions (it is in /v1/completions)", "echo");
        RefuseTools(f);
        var turns = ReadMessages(f);
        bool logprobs = f.Bool("logprobs") ?? false;
        int? top = f.Int("top_logprobs", 0, 20);
        if (top is not null && !logprobs) throw ApiException.BadRequest("top_logprobs needs logprobs: true", "top_logprobs");
        int? max = f.Int("max_completion_tokens", int.MinValue, int.MaxValue) ?? f.Int("max_tokens", int.MinValue, int.MaxValue);
        if (max < 1) throw ApiException.BadRequest($"max_tokens {max} must be ≥ 1", f.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
        int? promptTop = f.Int("prompt_logprobs", 0, 20); // vLLM's
        if (promptTop is not null && p.Stream) throw ApiException.BadRequest("prompt_logprobs is not supported with stream in chat completions", "prompt_logprobs");
        var ids = engine.EncodeChat(turns);
        var requests = Enumerable.Range(0, p.N).Select(i => new TextRequest
        {
            PromptIds = ids, MaxTokens = max, Sampling = p.ForChoice(i), Stop = p.Stop,
            TopLogprobs = logprobs ? top ?? 0 : null, IgnoreEos = p.IgnoreEos, StopTokenIds = p.StopTokenIds, ResponseFormat = p.Format,
            PromptLogprobs = promptTop, SkipSpecialTokens = p.SkipSpecialTokens,
        }).ToArray();
        await GenerationRunner.RunAsync(ctx, engine, requests, p.N, new ChatFormat(logprobs, engine.Tokenizer, promptTop), p);
    }

    // tools would need the template to show them and a parser to read the calls back (vLLM: --enable-auto-tool-choice
    // with a --tool-call-parser); rather than answer as if none were given, a request that lets the model call one is refused
    private static void RefuseTools(JsonFields f)
    {
        // "tools" with "tool_choice", and the deprecated "functions" with "function_call"
        foreach (var (field, choiceField) in new[] { ("tools", "tool_choice"), ("functions", "function_call") })
        {
            if (f.Get(field) is not { } tools) continue;
            if (tools.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong(field, tools, $"an array of {field}");
            if (tools.GetArrayLength() == 0) continue;
            if (f.Get(choiceField) is { ValueKind: JsonValueKind.String } c && c.GetString() == "none") continue;
            throw ApiException.BadRequest($"{field} are not supported: this server does not parse tool calls ({tools.GetArrayLength()} {field} given); "
                + $"send {choiceField} \"none\" to answer without them", field);
        }
    }

    internal static List<ChatTurn> ReadMessages(JsonFields f)
    {
        if (f.Get("messages") is not { } v) throw ApiException.BadRequest("messages is missing", "messages");
        if (v.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong("messages", v, "an array of messages");
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (var m in v.EnumerateArray())
        {
            string where = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw JsonFields.Wrong(where, m, "an object with role and content", "messages");
            var mf = new JsonFields(m, where + ".", "messages");
            var role = mf.String("role") ?? throw ApiException.BadRequest($"{where}.role is missing", "messages");
            if (!Roles.Contains(role)) throw ApiException.BadRequest($"{where}.role '{role}' is not one of system, developer, user, assistant, tool", "messages");
            turns.Add(new ChatTurn(role == "developer" ? "system" : role, Content(mf.Get("content"), where)));
        }
        if (turns.Count == 0) throw ApiException.BadRequest("messages is empty; give at least one message", "messages");
        return turns;
    }

    // a string, or parts [{"type": "text", "text": "…"}]
    private static string Content(JsonElement? content, string where)
    {
        if (content is not { } c) return "";
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw JsonFields.Wrong(where + ".content", c, "a string or an array of text parts", "messages");
        var sb = new StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            var pf = new JsonFields(part.ValueKind == JsonValueKind.Object ? part : throw JsonFields.Wrong(where + ".content", part, "a content part object", "messages"),
                where + ".content[].", "messages");
            var type = pf.String("type");
            if (type != "text") throw ApiException.BadRequest($"{where}.content has a part of type '{type}'; only text parts are supported", "messages");
            sb.Append(pf.String("text"));
        }
        return sb.ToString();
    }
}
