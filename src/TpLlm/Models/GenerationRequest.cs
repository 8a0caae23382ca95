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

    /// <summary>
    /// Throws a <see cref="TpLlmException"/> unless the request fits a model of
    /// <paramref name="vocabSize"/> ids and a context of <paramref name="context"/> tokens;
    /// <paramref name="name"/> ("prompt 2", "the prompt") names it in the message.
    /// </summary>
    public void Validate(int context, int vocabSize, string name)
    {
        Sampling.Validate(vocabSize);
        if (PromptIds.Length == 0) throw new TpLlmException($"{name} is empty; give at least one token");
        if (PromptIds.Length >= context)
            throw new TpLlmException($"{name} has {PromptIds.Length} tokens; the context holds {context}, so at most {context - 1} leave room for one new token");
        if (MaxNewTokens < (PromptLogprobs is null ? 1 : 0))
            throw new TpLlmException($"max new tokens {MaxNewTokens} must be ≥ {(PromptLogprobs is null ? "1 (0 only when scoring the prompt)" : "0")}");
        if (PromptLogprobs is < 0 or > 20) throw new TpLlmException($"prompt logprobs {PromptLogprobs} is outside [0, 20]");
        if (Sampling.MinTokens > MaxNewTokens) throw new TpLlmException($"min tokens {Sampling.MinTokens} exceed max new tokens {MaxNewTokens}");
        foreach (var id in PromptIds)
            if ((uint)id >= (uint)vocabSize) throw new TpLlmException($"token id {id} in {name} is outside the vocabulary [0, {vocabSize})");
        foreach (var id in StopTokenIds)
            if ((uint)id >= (uint)vocabSize) throw new TpLlmException($"stop token id {id} is outside the vocabulary [0, {vocabSize})");
    }
}
