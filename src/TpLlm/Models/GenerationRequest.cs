using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>One sequence to continue.</summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt token ids (at least one).</summary>
    public required int[] PromptIds { get; init; }

    /// <summary>New tokens to generate at most (≥ 1; 0 only with <see cref="PromptLogprobs"/>, to score the prompt alone).</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>How to pick tokens.</summary>
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Report this many top alternatives per token (0 = only when <see cref="WantLogprobs"/>).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Report the chosen token's log-probability.</summary>
    public bool WantLogprobs { get; init; }

    /// <summary>Keep going after an end-of-sequence token (vLLM's ignore_eos).</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>More ids that end the sequence like end-of-sequence, even with <see cref="IgnoreEos"/> (vLLM's stop_token_ids).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>
    /// Report each prompt token's log-probability given the tokens before it, with this many top
    /// alternatives (0–20; vLLM's <c>prompt_logprobs</c>); null = no. Served by <c>ContinuousBatcher</c>.
    /// </summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>What the output must be: with <see cref="Sampling.ResponseFormat.JsonObject"/>, one JSON object.</summary>
    public ResponseFormat ResponseFormat { get; init; }

    /// <summary>What the logits processors and the sampler learn of the sequence when it starts.</summary>
    public SequenceSpec Sequence => new(PromptIds, Sampling, StopTokenIds, IgnoreEos, ResponseFormat);

    /// <summary>
    /// Why the sequence ends after <paramref name="token"/>, its <paramref name="generated"/>-th token, was picked at
    /// <paramref name="position"/> (where it goes into the cache), or null if it goes on: an end-of-sequence id (unless
    /// ignored) or a stop id, then <see cref="MaxNewTokens"/>, then a full context of <paramref name="context"/> positions.
    /// </summary>
    public FinishReason? FinishAfter(int token, int generated, int position, int context, IReadOnlySet<int> eosIds)
    {
        if ((!IgnoreEos && eosIds.Contains(token)) || StopTokenIds.Contains(token)) return FinishReason.Eos;
        if (generated >= MaxNewTokens) return FinishReason.MaxTokens;
        if (position + 1 >= context) return FinishReason.ContextFull;
        return null;
    }

    /// <summary>
    /// Throws an <see cref="InvalidRequestException"/> naming the field at fault unless the request can run on a
    /// model of <paramref name="vocabSize"/> ids and a context of <paramref name="context"/> tokens. With
    /// <paramref name="maxTokensMustFit"/> (the OpenAI API's rule) the prompt and <see cref="MaxNewTokens"/> must fit
    /// the context together; otherwise generation may stop early with <see cref="FinishReason.ContextFull"/>.
    /// Numbers from a request are added in 64 bits, so no sum overflows.
    /// </summary>
    public GenerationRequest Validate(int context, int vocabSize, bool maxTokensMustFit = false)
    {
        long prompt = PromptIds.Length;
        if (prompt == 0) throw new InvalidRequestException("prompt", "{field} is empty; give at least one token");
        foreach (var id in PromptIds)
            if ((uint)id >= (uint)vocabSize) throw new InvalidRequestException("prompt", $"token id {id} in {{field}} is outside the vocabulary [0, {vocabSize})");
        if (prompt >= context)
            throw new InvalidRequestException("prompt",
                $"This model's maximum context length is {context} tokens. However, you requested {prompt} tokens in the {{field}}, which leaves no room for a new token. "
                + "Please reduce the length of the {field}.", "context_length_exceeded");
        if (maxTokensMustFit && prompt + MaxNewTokens > context)
            throw new InvalidRequestException("prompt",
                $"This model's maximum context length is {context} tokens. However, you requested {prompt + MaxNewTokens} tokens ({prompt} in the {{field}}, "
                + $"{MaxNewTokens} in the completion). Please reduce the length of the {{field}} or {{name:max_tokens}}.", "context_length_exceeded");
        if (MaxNewTokens < (PromptLogprobs is null ? 1 : 0))
            throw new InvalidRequestException("max_tokens", $"{{field}} {MaxNewTokens} must be ≥ {(PromptLogprobs is null ? "1 (0 only when scoring the prompt)" : "0")}");
        if (PromptLogprobs is < 0 or > 20) throw new InvalidRequestException("prompt_logprobs", $"{{field}} {PromptLogprobs} is outside [0, 20]");
        if (TopLogprobs is < 0 or > 20) throw new InvalidRequestException("top_logprobs", $"{{field}} {TopLogprobs} is outside [0, 20]");
        Sampling.Validate(vocabSize);
        if (Sampling.MinTokens > MaxNewTokens)
            throw new InvalidRequestException("min_tokens", $"{{field}} {Sampling.MinTokens} exceeds {{name:max_tokens}} {MaxNewTokens}");
        foreach (var id in StopTokenIds)
            if ((uint)id >= (uint)vocabSize) throw new InvalidRequestException("stop_token_ids", $"{{field}}: {id} is outside the vocabulary [0, {vocabSize})");
        return this;
    }
}
