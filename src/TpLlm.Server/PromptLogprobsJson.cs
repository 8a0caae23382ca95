using System.Text.Json;
using TpLlm.Serving;
using TpLlm.Tokenization;

namespace TpLlm.Server;

/// <summary>
/// vLLM's <c>prompt_logprobs</c>: per prompt token (the first null), an object keyed by token id — the token itself,
/// then the <c>top</c> most likely — of <c>{"logprob", "rank", "decoded_token"}</c>.
/// </summary>
internal static class PromptLogprobsJson
{
    public static void Write(Utf8JsonWriter w, IReadOnlyList<GeneratedToken> prompt, int top, HfTokenizer tokenizer)
    {
        w.WriteStartArray("prompt_logprobs");
        foreach (var t in prompt)
        {
            if (t.Logprobs is not { } lp)
            {
                w.WriteNullValue();
                continue;
            }
            w.WriteStartObject();
            Entry(w, t.Id, lp.Logprob, lp.Rank, t.Text);
            int k = 0;
            foreach (var (id, logprob) in lp.Top.Take(top))
            {
                k++;
                if (id != t.Id) Entry(w, id, logprob, k, System.Text.Encoding.UTF8.GetString(tokenizer.TokenBytes(id)));
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void Entry(Utf8JsonWriter w, int id, float logprob, int rank, string text)
    {
        w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("logprob", logprob);
        w.WriteNumber("rank", rank);
        w.WriteString("decoded_token", text);
        w.WriteEndObject();
    }
}
