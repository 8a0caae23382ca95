namespace TpLlm.Sampling;

/// <summary>
/// How to pick the next token. Temperature 0 is greedy. Filters apply in the order
/// top-k → top-p → min-p to the temperature-scaled distribution over the real vocabulary.
/// A logit bias and penalties (as in vLLM) change the logits before all of them, greedy included:
/// the bias first, then the repetition penalty, over prompt and output tokens, then the frequency
/// and presence penalties, over output tokens.
/// </summary>
public sealed record SamplingParams
{
    /// <summary>Greedy decoding.</summary>
    public static readonly SamplingParams Greedy = new();

    /// <summary>Softmax temperature; 0 = greedy (argmax).</summary>
    public float Temperature { get; init; }

    /// <summary>Keep the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest most-likely set whose probability reaches p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep tokens whose probability is at least min-p × the top probability; 0 = off.</summary>
    public float MinP { get; init; }

    /// <summary>Subtracted once from the logit of every token the output already holds (OpenAI's <c>presence_penalty</c>); 0 = off.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Subtracted from a token's logit once per time the output already holds it (OpenAI's <c>frequency_penalty</c>); 0 = off.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>
    /// Logits of tokens in the prompt or the output are divided by it when positive and multiplied
    /// by it when negative (vLLM's and Hugging Face's <c>repetition_penalty</c>); 1 = off.
    /// </summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Added to the logits of the given token ids, each in [-100, 100] (OpenAI's <c>logit_bias</c>); null or empty = off.</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>Tokens to generate before end-of-sequence or a stop token id may be picked (vLLM's <c>min_tokens</c>); 0 = off.</summary>
    public int MinTokens { get; init; }

    /// <summary>Seed of the sequence's random stream.</summary>
    public ulong Seed { get; init; }

    /// <summary>Throws an <see cref="InvalidRequestException"/> naming the field and its allowed range (logit-bias ids: [0, <paramref name="vocabSize"/>)).</summary>
    public SamplingParams Validate(int vocabSize = int.MaxValue)
    {
        static InvalidRequestException Bad(string field, string rest) => new(field, "{field} " + rest);
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw Bad("temperature", $"{Temperature} is outside [0, ∞) (0 = greedy)");
        if (TopK < 0) throw Bad("top_k", $"{TopK} is negative; allowed: 0 (off) or ≥ 1");
        if (!(TopP > 0 && TopP <= 1)) throw Bad("top_p", $"{TopP} is outside (0, 1]");
        if (!(MinP >= 0 && MinP <= 1)) throw Bad("min_p", $"{MinP} is outside [0, 1]");
        if (!(PresencePenalty >= -2 && PresencePenalty <= 2)) throw Bad("presence_penalty", $"{PresencePenalty} is outside [-2, 2]");
        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2)) throw Bad("frequency_penalty", $"{FrequencyPenalty} is outside [-2, 2]");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw Bad("repetition_penalty", $"{RepetitionPenalty} is outside (0, ∞) (1 = off)");
        if (MinTokens < 0) throw Bad("min_tokens", $"{MinTokens} is negative");
        foreach (var (id, bias) in LogitBias ?? new Dictionary<int, float>())
        {
            if ((uint)id >= (uint)vocabSize) throw Bad("logit_bias", $"token id {id} is outside the vocabulary [0, {vocabSize})");
            if (!(bias >= -100 && bias <= 100)) throw Bad("logit_bias", $"{bias} for token {id} is outside [-100, 100]");
        }
        return this;
    }

    /// <summary>True when the token is the argmax.</summary>
    public bool IsGreedy => Temperature == 0;
}
