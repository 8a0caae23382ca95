using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>One generated token: its id, its bytes, and its log-probabilities when asked for.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Bytes">What the token stands for (a UTF-8 fragment).</param>
/// <param name="Logprobs">log p and the top alternatives, or null.</param>
public sealed record GeneratedToken(int Id, byte[] Bytes, TokenLogprobs? Logprobs)
{
    /// <summary>The token's text (invalid UTF-8 fragments shown as U+FFFD).</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Bytes);
}
