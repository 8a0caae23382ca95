using TpLlm.Sampling;

namespace TpLlm.Server;

/// <summary>The fields completions and chat completions share: model, sampling (penalties included), stop, streaming, n (choices per prompt).</summary>
internal sealed record RequestParams(SamplingParams Sampling, string[] Stop, int[] StopTokenIds, bool Stream, bool IncludeUsage, bool IgnoreEos, int N, ResponseFormat Format,
    bool SkipSpecialTokens)
{
    /// <summary>Most choices one request may ask for (n × prompts).</summary>
    public const int MaxChoices = 64;

    /// <summary>Choice <paramref name="i"/> of a prompt samples with seed + i, so the n choices differ and each is reproducible alone.</summary>
    public SamplingParams ForChoice(int i) => Sampling with { Seed = unchecked(Sampling.Seed + (ulong)i) };

    public static RequestParams Read(JsonFields f, string modelId, int vocabSize)
    {
        CheckModel(f, modelId);
        int n = (int)(f.Int("n", 1, MaxChoices) ?? 1);
        if (f.Int("best_of", int.MinValue, int.MaxValue) is { } bo && bo != n) throw ApiException.BadRequest($"best_of {bo} is not supported; only best_of = n ({n})", "best_of");
        int topK = f.Int("top_k", -1, int.MaxValue) ?? 0;
        var sampling = new SamplingParams
        {
            Temperature = f.Float("temperature", 0, 2) ?? 1f,
            TopP = f.Float("top_p", 0, 1, minExclusive: true) ?? 1f,
            TopK = topK < 0 ? 0 : topK, // vLLM spells "off" as -1
            MinP = f.Float("min_p", 0, 1) ?? 0f,
            PresencePenalty = f.Float("presence_penalty", -2, 2) ?? 0f,
            FrequencyPenalty = f.Float("frequency_penalty", -2, 2) ?? 0f,
            RepetitionPenalty = f.Float("repetition_penalty", 0, float.PositiveInfinity, minExclusive: true) ?? 1f, // vLLM's extra parameter
            LogitBias = LogitBias(f, vocabSize),
            MinTokens = f.Int("min_tokens", 0, int.MaxValue) ?? 0, // vLLM's extra parameter
            Seed = f.Long("seed") is { } seed ? unchecked((ulong)seed) : (ulong)System.Diagnostics.Stopwatch.GetTimestamp(),
        };
        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = false;
        if (f.Get("stream_options") is { } so)
        {
            if (so.ValueKind != System.Text.Json.JsonValueKind.Object) throw JsonFields.Wrong("stream_options", so, "an object");
            includeUsage = new JsonFields(so).Bool("include_usage") ?? false;
        }
        int[] stopIds = f.Get("stop_token_ids") is { } ids ? JsonFields.TokenIds(ids, "stop_token_ids", vocabSize) : []; // vLLM's
        return new RequestParams(sampling, f.Stop(), stopIds, stream, includeUsage, f.Bool("ignore_eos") ?? false, n, ReadFormat(f),
            f.Bool("skip_special_tokens") ?? true); // vLLM's
    }

    // response_format: {"type": "text"} or {"type": "json_object"} (OpenAI's JSON mode)
    private static ResponseFormat ReadFormat(JsonFields f)
    {
        if (f.Get("response_format") is not { } v) return ResponseFormat.Text;
        if (v.ValueKind != System.Text.Json.JsonValueKind.Object) throw JsonFields.Wrong("response_format", v, "an object such as {\"type\": \"json_object\"}");
        var type = new JsonFields(v).Get("type");
        if (type is { ValueKind: not System.Text.Json.JsonValueKind.String }) throw JsonFields.Wrong("response_format.type", type.Value, "a string");
        return type?.GetString() switch
        {
            "text" => ResponseFormat.Text,
            "json_object" => ResponseFormat.JsonObject,
            null => throw ApiException.BadRequest("response_format.type is missing; use \"text\" or \"json_object\"", "response_format"),
            var t => throw ApiException.BadRequest($"response_format.type '{t}' is not supported; use \"text\" or \"json_object\"", "response_format"),
        };
    }

    /// <summary>A 404 (model_not_found, as OpenAI and vLLM answer) when the body names a model other than <paramref name="modelId"/>.</summary>
    public static void CheckModel(JsonFields f, string modelId)
    {
        if (f.String("model") is { } model && model != modelId)
            throw new ApiException(404, $"The model '{model}' does not exist; this server serves '{modelId}' (see GET /v1/models)", "model", code: "model_not_found");
    }

    // {"token id": bias in [-100, 100], …}
    private static Dictionary<int, float>? LogitBias(JsonFields f, int vocabSize)
    {
        if (f.Get("logit_bias") is not { } v) return null;
        if (v.ValueKind != System.Text.Json.JsonValueKind.Object) throw JsonFields.Wrong("logit_bias", v, "an object of token id → bias");
        var bias = new Dictionary<int, float>();
        foreach (var e in v.EnumerateObject())
        {
            if (!int.TryParse(e.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id >= vocabSize)
                throw ApiException.BadRequest($"logit_bias key '{e.Name}' is not a token id in [0, {vocabSize})", "logit_bias");
            if (e.Value.ValueKind != System.Text.Json.JsonValueKind.Number || !e.Value.TryGetDouble(out double b)) throw JsonFields.Wrong($"logit_bias['{e.Name}']", e.Value, "a number");
            if (!(b >= -100 && b <= 100)) throw ApiException.BadRequest($"logit_bias['{e.Name}'] {b} is outside [-100, 100]", "logit_bias");
            bias[id] = (float)b;
        }
        return bias.Count == 0 ? null : bias;
    }
}
