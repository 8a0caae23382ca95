namespace TpLlm.Serving;

/// <summary>The whole output of a request.</summary>
/// <param name="Text">Generated text, without the end-of-sequence token or the stop string.</param>
/// <param name="FinishReason">"stop" (end of sequence or a stop string) or "length" (max tokens or context).</param>
/// <param name="PromptTokens">Prompt length in tokens.</param>
/// <param name="Tokens">Every generated token, in order.</param>
public sealed record TextResult(string Text, string FinishReason, int PromptTokens, IReadOnlyList<GeneratedToken> Tokens)
{
    /// <summary>With <see cref="TextRequest.PromptLogprobs"/>: the prompt's tokens with their log-probabilities (the first has none).</summary>
    public IReadOnlyList<GeneratedToken>? Prompt { get; init; }

    /// <summary>Prompt tokens found in the cache (prefix caching) and not prefilled again.</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>Generated token count.</summary>
    public int CompletionTokens => Tokens.Count;
}
