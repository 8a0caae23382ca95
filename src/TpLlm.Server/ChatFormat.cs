using System.Text.Json;
using TpLlm.Serving;
using TpLlm.Tokenization;

namespace TpLlm.Server;

/// <summary><c>/v1/chat/completions</c> responses and chunks, with logprobs.content entries (token, logprob, bytes, top_logprobs).</summary>
internal sealed class ChatFormat(bool logprobs, HfTokenizer tokenizer, int? promptLogprobs = null) : IResponseFormat
{
    public string IdPrefix => "chatcmpl-";
    public string ObjectName => "chat.completion";
    public string ChunkObjectName => "chat.completion.chunk";

    public void WriteChoices(Utf8JsonWriter w, IReadOnlyList<TextResult> results)
    {
        w.WriteStartArray("choices");
        for (int i = 0; i < results.Count; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("index", i);
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", results[i].Text);
            w.WriteNull("refusal");
            w.WriteEndObject();
            WriteLogprobs(w, results[i].Tokens);
            w.WriteString("finish_reason", results[i].FinishReason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (promptLogprobs is { } m && results.Count > 0 && results[0].Prompt is { } prompt) PromptLogprobsJson.Write(w, prompt, m, tokenizer); // vLLM's, beside choices
    }

    public void WriteChunkChoices(Utf8JsonWriter w, int index, TextDelta? delta, string? finishReason, bool first)
    {
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("delta");
        if (first) w.WriteString("role", "assistant");
        if (first || delta is not null) w.WriteString("content", delta?.Text ?? "");
        w.WriteEndObject();
        WriteLogprobs(w, delta?.Tokens ?? []);
        if (finishReason is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private void WriteLogprobs(Utf8JsonWriter w, IReadOnlyList<GeneratedToken> tokens)
    {
        if (!logprobs || tokens.Count == 0) { w.WriteNull("logprobs"); return; }
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var t in tokens)
        {
            WriteEntry(w, t.Bytes, t.Logprobs!.Logprob, startObject: true);
            w.WriteStartArray("top_logprobs");
            foreach (var (id, lp) in t.Logprobs.Top)
            {
                WriteEntry(w, tokenizer.TokenBytes(id), lp, startObject: true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    private static void WriteEntry(Utf8JsonWriter w, byte[] bytes, float logprob, bool startObject)
    {
        if (startObject) w.WriteStartObject();
        w.WriteString("token", System.Text.Encoding.UTF8.GetString(bytes));
        w.WriteNumber("logprob", logprob);
        w.WriteStartArray("bytes");
        foreach (var b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
    }
}
