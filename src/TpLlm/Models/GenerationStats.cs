namespace TpLlm.Models;

/// <summary>
/// How long a <see cref="Generator.Generate"/> took: the prefill step (every prompt token, and the first new token of
/// each sequence) and the decode steps after it, each new token one row of a step.
/// </summary>
/// <param name="PrefillTokens">Prompt tokens run in the prefill step.</param>
/// <param name="Prefill">Time of the prefill step, sampling included.</param>
/// <param name="DecodeTokens">Tokens made by decode steps (all but each sequence's first).</param>
/// <param name="Decode">Time of the decode steps.</param>
public readonly record struct GenerationStats(int PrefillTokens, TimeSpan Prefill, int DecodeTokens, TimeSpan Decode)
{
    /// <summary>Prompt tokens per second of the prefill step.</summary>
    public double PrefillTokensPerSecond => PrefillTokens / Math.Max(Prefill.TotalSeconds, 1e-9);

    /// <summary>New tokens per second of the decode steps.</summary>
    public double DecodeTokensPerSecond => DecodeTokens / Math.Max(Decode.TotalSeconds, 1e-9);

    /// <summary>"prefill N tokens in X s (P tokens/s); decode M tokens in Y s (D tokens/s)".</summary>
    public override string ToString() =>
        $"prefill {PrefillTokens} tokens in {Prefill.TotalSeconds:F2} s ({PrefillTokensPerSecond:F1} tokens/s); decode {DecodeTokens} tokens in {Decode.TotalSeconds:F2} s ({DecodeTokensPerSecond:F1} tokens/s)";
}
