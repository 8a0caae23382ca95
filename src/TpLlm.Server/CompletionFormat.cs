using System.Text.Json;
using TpLlm.Serving;
using TpLlm.Tokenization;

namespace TpLlm.Server;

/// <summary>
/// <c>/v1/completions</c> responses, with the legacy logprobs object (tokens, token_logprobs, top_logprobs, text_offset;
/// each token's own log-probability among its top ones, as OpenAI and vLLM report it). With <c>echo</c>, a choice's text
/// (and, with logprobs, its tokens) starts with the prompt's — the first prompt token has no log-probability (null).
/// </summary>
internal sealed class CompletionFormat(int? logprobs, HfTokenizer tokenizer, string?[] echoes, int? promptLogprobs = null) : IResponseFormat
{
    private readonly int[] _offsets = new int[echoes.Length]; // text_offset of each choice's next token
    private readonly bool[] _echoed = new bool[echoes.Length];  // a stream has sent the choice's echo

    public string IdPrefix => "cmpl-";
    public string ObjectName => "text_completion";
    public string ChunkObjectName => "text_completion";

    public void WriteChoices(Utf8JsonWriter w, IReadOnlyList<TextResult> results)
    {
        w.WriteStartArray("choices");
        for (int i = 0; i < results.Count; i++) WriteChoice(w, i, results[i].Text, results[i].Tokens, results[i].FinishReason, results[i].Prompt);
        w.WriteEndArray();
    }

    public void WriteChunkChoices(Utf8JsonWriter w, int index, TextDelta? delta, string? finishReason, bool first)
    {
        w.WriteStartArray("choices");
        if (delta is not null || finishReason is not null) WriteChoice(w, index, delta?.Text ?? "", delta?.Tokens ?? [], finishReason, delta?.Prompt);
        w.WriteEndArray();
    }

    private void WriteChoice(Utf8JsonWriter w, int index, string text, IReadOnlyList<GeneratedToken> tokens, string? finishReason, IReadOnlyList<GeneratedToken>? prompt)
    {
        if (echoes[index] is { } echo && !_echoed[index])
        {
            _echoed[index] = true; // the first chunk of the choice (or the whole response) carries the prompt
            text = echo + text;
            if (prompt is not null) tokens = [.. prompt, .. tokens];
        }
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteString("text", text);
        if (logprobs is { } n && tokens.Count > 0) WriteLogprobs(w, index, tokens, n);
        else w.WriteNull("logprobs");
        if (promptLogprobs is { } m && prompt is not null) PromptLogprobsJson.Write(w, prompt, m, tokenizer); // vLLM's
        if (finishReason is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
    }

    private void WriteLogprobs(Utf8JsonWriter w, int index, IReadOnlyList<GeneratedToken> tokens, int top)
    {
        w.WriteStartObject("logprobs");
        w.WriteStartArray("tokens");
        foreach (var t in tokens) w.WriteStringValue(t.Text);
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        foreach (var t in tokens)
            if (t.Logprobs is { } lp) w.WriteNumberValue(lp.Logprob);
            else w.WriteNullValue(); // the prompt's first token: nothing before it
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        foreach (var t in tokens)
        {
            if (t.Logprobs is null)
            {
                w.WriteNullValue();
                continue;
            }
            w.WriteStartObject();
            var seen = new HashSet<string> { t.Text };
            w.WriteNumber(t.Text, t.Logprobs.Logprob); // the token itself, then the most likely ones
            foreach (var (id, lp) in t.Logprobs.Top.Take(top))
            {
                var text = System.Text.Encoding.UTF8.GetString(tokenizer.TokenBytes(id));
                if (seen.Add(text)) w.WriteNumber(text, lp);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        foreach (var t in tokens) { w.WriteNumberValue(_offsets[index]); _offsets[index] += t.Text.Length; }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
