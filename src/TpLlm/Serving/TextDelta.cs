namespace TpLlm.Serving;

/// <summary>Text that became final since the previous delta, and the tokens generated meanwhile.</summary>
/// <param name="Text">New text (may be empty while a UTF-8 character or a possible stop string is held back).</param>
/// <param name="Tokens">Tokens generated since the previous delta.</param>
public sealed record TextDelta(string Text, IReadOnlyList<GeneratedToken> Tokens)
{
    /// <summary>In the first delta of a request that scores its prompt: the prompt's tokens with their log-probabilities (the first has none).</summary>
    public IReadOnlyList<GeneratedToken>? Prompt { get; init; }
}
