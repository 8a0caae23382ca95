using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>
/// vLLM's <c>POST /tokenize</c> (a <c>prompt</c>, or chat <c>messages</c> rendered with the template) and
/// <c>POST /detokenize</c> (<c>tokens</c> back to text), so clients can count tokens as the server does.
/// </summary>
internal static class TokenizeEndpoints
{
    public static async Task TokenizeAsync(HttpContext ctx, InferenceEngine engine)
    {
        using var doc = await RequestBody.ReadAsync(ctx);
        var f = new JsonFields(doc.RootElement);
        RequestParams.CheckModel(f, engine.ModelId);
        int[] ids;
        if (f.Has("messages"))
        {
            if (f.Has("prompt")) throw ApiException.BadRequest("give either prompt or messages, not both", "prompt");
            var text = engine.ChatTemplate.Render(ChatEndpoint.ReadMessages(f), f.Bool("add_generation_prompt") ?? true);
            ids = engine.Tokenizer.Encode(text, f.Bool("add_special_tokens") ?? false); // the template writes its own special tokens
        }
        else
        {
            var prompt = f.String("prompt") ?? throw ApiException.BadRequest("prompt is missing (or give messages)", "prompt");
            ids = engine.Tokenizer.Encode(prompt, f.Bool("add_special_tokens") ?? true);
        }
        bool strs = f.Bool("return_token_strs") ?? false;
        await GenerationRunner.WriteJson(ctx, w =>
        {
            w.WriteNumber("count", ids.Length);
            w.WriteNumber("max_model_len", engine.MaxContext);
            w.WriteStartArray("tokens");
            foreach (int id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            if (!strs) return;
            w.WriteStartArray("token_strs");
            foreach (int id in ids) w.WriteStringValue(System.Text.Encoding.UTF8.GetString(engine.Tokenizer.TokenBytes(id)));
            w.WriteEndArray();
        });
    }

    public static async Task DetokenizeAsync(HttpContext ctx, InferenceEngine engine)
    {
        using var doc = await RequestBody.ReadAsync(ctx);
        var f = new JsonFields(doc.RootElement);
        RequestParams.CheckModel(f, engine.ModelId);
        if (f.Get("tokens") is not { } v) throw ApiException.BadRequest("tokens is missing", "tokens");
        var ids = JsonFields.TokenIds(v, "tokens", engine.Folder.Config.VocabSize);
        await GenerationRunner.WriteJson(ctx, w => w.WriteString("prompt", engine.Tokenizer.Decode(ids)));
    }
}
