namespace TpLlm.Sampling;

/// <summary>
/// The gather-then-sample reference: works on a full logits row <c>[V]</c> (after an
/// all-gather) with straightforward sorting. Used to check <see cref="VocabParallelSampler"/>
/// and when full logits are wanted anyway.
/// </summary>
public static class FullVocabSampler
{
    /// <summary>Picks the next token from <paramref name="row"/> (ids ≥ <paramref name="limit"/> are masked).</summary>
    public static int Sample(ReadOnlySpan<float> row, int limit, SamplingParams p, SplitMix64 rng)
    {
        var valid = row[..Math.Min(limit, row.Length)];
        if (p.IsGreedy) return LocalReductions.Argmax(valid, 0).Id;
        double u = rng.NextDouble();
        var all = new Candidate[valid.Length];
        for (int i = 0; i < valid.Length; i++) all[i] = new Candidate(valid[i] / p.Temperature, i);
        Array.Sort(all, Candidate.CompareMostLikelyFirst);
        int n = p.TopK > 0 ? Math.Min(p.TopK, all.Length) : all.Length;
        return CandidateSampling.Sample(all.AsSpan(0, n), p.TopP, p.MinP, u, new double[n]);
    }

    /// <summary>log_softmax of the row (ids ≥ <paramref name="limit"/> masked), in double.</summary>
    public static double[] LogSoftmax(ReadOnlySpan<float> row, int limit)
    {
        var valid = row[..Math.Min(limit, row.Length)];
        float max = LocalReductions.Max(valid, 1f);
        double lse = max + Math.Log(LocalReductions.SumExp(valid, max));
        var result = new double[valid.Length];
        for (int i = 0; i < valid.Length; i++) result[i] = valid[i] - lse;
        return result;
    }
}
