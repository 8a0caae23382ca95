using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>One sequence to continue.</summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt token ids (at least one).</summary>
    public required int[] PromptIds { get; init; }

    /// <summary>New tokens to generate at most (≥ 1).</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>How to pick tokens.</summary>
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Report this many top alternatives per token (0 = only when <see cref="WantLogprobs"/>).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Report the chosen token's log-probability.</summary>
    public bool WantLogprobs { get; init; }

    /// <summary>Keep going after an end-of-sequence token (vLLM's ignore_eos).</summary>
    public bool IgnoreEos { get; init; }
}
