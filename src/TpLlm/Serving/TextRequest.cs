using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>A text generation request: prompt ids and how to continue them.</summary>
public sealed record TextRequest
{
    /// <summary>The prompt, tokenized (chat templates already applied).</summary>
    public required int[] PromptIds { get; init; }

    /// <summary>New tokens at most; null = until the context is full; 0 only with <see cref="PromptLogprobs"/>.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Sampling settings.</summary>
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Strings that end the output when generated (not included in the text).</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Token ids that end the output when generated, like end-of-sequence (vLLM's <c>stop_token_ids</c>; not in the text).</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Alternatives per token to report with log-probabilities; null = no log-probabilities.</summary>
    public int? TopLogprobs { get; init; }

    /// <summary>
    /// Score the prompt: each prompt token's log-probability given the tokens before it, with this many
    /// alternatives (0–20; vLLM's <c>prompt_logprobs</c>, what <c>echo</c> with <c>logprobs</c> reports); null = no.
    /// </summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>Special tokens (such as <c>&lt;|endoftext|&gt;</c> under <see cref="IgnoreEos"/>) add no text (vLLM's <c>skip_special_tokens</c>, on by default).</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Keep going after an end-of-sequence token.</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>What the output must be: with <see cref="Sampling.ResponseFormat.JsonObject"/>, one JSON object (OpenAI's JSON mode).</summary>
    public ResponseFormat ResponseFormat { get; init; }
}
