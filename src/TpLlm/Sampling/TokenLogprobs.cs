namespace TpLlm.Sampling;

/// <summary>The log-probability of a chosen token and the most likely alternatives (temperature 1, unfiltered).</summary>
/// <param name="Id">Chosen token.</param>
/// <param name="Logprob">log p(chosen).</param>
/// <param name="Top">Most likely tokens and their log-probabilities, most likely first.</param>
public sealed record TokenLogprobs(int Id, float Logprob, (int Id, float Logprob)[] Top)
{
    /// <summary>The chosen token's rank in the vocabulary (1 = most likely; ties share the better rank); 0 = not computed.</summary>
    public int Rank { get; init; }

    /// <summary>The same, with at most <paramref name="n"/> alternatives.</summary>
    public TokenLogprobs TakeTop(int n) => Top.Length <= n ? this : this with { Top = Top[..n] };
}
