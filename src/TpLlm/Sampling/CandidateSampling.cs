namespace TpLlm.Sampling;

/// <summary>
/// The sampling rule on an explicit candidate list, shared by the full-vocabulary reference and
/// the vocab-parallel top-k path so both decide identically:
/// weights <c>w = exp(x − max)</c> in double; top-p keeps the shortest most-likely-first prefix
/// whose mass reaches p × total; min-p keeps <c>w ≥ min_p</c>; the draw walks the kept tokens in
/// id order until the running mass exceeds <c>u × kept mass</c>.
/// </summary>
public static class CandidateSampling
{
    /// <summary>
    /// Picks a token from <paramref name="candidates"/> (scaled logits, most likely first, at least
    /// one). <paramref name="scratch"/> must hold as many entries.
    /// </summary>
    public static int Sample(Span<Candidate> candidates, float topP, float minP, double u, Span<double> scratch)
    {
        int n = candidates.Length;
        float max = candidates[0].Value;
        if (float.IsNegativeInfinity(max) || float.IsNaN(max)) return MinId(candidates);
        var w = scratch[..n];
        double total = 0;
        for (int i = 0; i < n; i++) total += w[i] = Math.Exp((double)candidates[i].Value - max);
        if (topP < 1)
        {
            double target = topP * total, cum = 0;
            int keep = n;
            for (int i = 0; i < n; i++)
            {
                cum += w[i];
                if (cum >= target) { keep = i + 1; break; }
            }
            n = keep;
        }
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (w[i] >= minP)
            {
                candidates[kept] = candidates[i];
                w[kept++] = w[i];
            }
        var list = candidates[..kept];
        var weights = w[..kept];
        // id order for the draw (a comparer object: a Comparison here would be wrapped in a new one every call)
        list.Sort(weights, IdOrder.Instance);
        double mass = 0;
        foreach (var x in weights) mass += x;
        double goal = u * mass, run = 0;
        for (int i = 0; i < kept; i++)
        {
            run += weights[i];
            if (run > goal) return list[i].Id;
        }
        return list[kept - 1].Id;
    }

    private sealed class IdOrder : IComparer<Candidate>
    {
        public static readonly IdOrder Instance = new();

        public int Compare(Candidate a, Candidate b) => a.Id.CompareTo(b.Id);
    }

    private static int MinId(ReadOnlySpan<Candidate> c)
    {
        int m = int.MaxValue;
        foreach (var x in c) m = Math.Min(m, x.Id);
        return m;
    }
}
