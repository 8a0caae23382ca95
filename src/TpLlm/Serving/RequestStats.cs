using TpLlm.Models;

namespace TpLlm.Serving;

/// <summary>What one finished request cost, reported by <see cref="ContinuousBatcher.RequestFinished"/>.</summary>
/// <param name="PromptTokens">Tokens of its prompt.</param>
/// <param name="GeneratedTokens">Tokens it generated.</param>
/// <param name="Reason">Why it ended.</param>
/// <param name="QueueSeconds">From submission until it joined the batch (to the end, if it never joined).</param>
/// <param name="TimeToFirstTokenSeconds">From submission to its first token; null if it had none.</param>
/// <param name="TotalSeconds">From submission to the end.</param>
public readonly record struct RequestStats(int PromptTokens, int GeneratedTokens, FinishReason Reason, double QueueSeconds, double? TimeToFirstTokenSeconds, double TotalSeconds);
