using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>What one sequence produced.</summary>
/// <param name="Tokens">New tokens (the EOS token included when it ended the sequence).</param>
/// <param name="Reason">Why it stopped.</param>
/// <param name="Logprobs">Per-token log-probabilities, when asked for.</param>
/// <param name="PromptLogprobs">Per prompt token (the first null), when asked for (<see cref="GenerationRequest.PromptLogprobs"/>).</param>
/// <param name="CachedPromptTokens">Prompt tokens found in the cache (prefix caching) and not prefilled again.</param>
public sealed record GenerationResult(int[] Tokens, FinishReason Reason, TokenLogprobs[]? Logprobs, TokenLogprobs?[]? PromptLogprobs = null, int CachedPromptTokens = 0);
