namespace TpLlm.Parallel;

/// <summary>
/// Splits n items (heads, MLP columns) over ranks as evenly as possible in contiguous ranges:
/// the first n % parts ranks take one more. Works for any parts ≤ n, not only divisors.
/// </summary>
public static class BalancedSplit
{
    /// <summary>The range [Start, Start + Count) of <paramref name="index"/> among <paramref name="parts"/>.</summary>
    public static (int Start, int Count) Of(int n, int parts, int index)
    {
        if (parts < 1 || index < 0 || index >= parts)
            throw new TpLlmException($"part {index} of {parts} is not a valid split");
        int q = n / parts, rem = n % parts;
        int start = index * q + Math.Min(index, rem);
        return (start, q + (index < rem ? 1 : 0));
    }

    /// <summary>
    /// The range of <paramref name="index"/> when n items are split in whole groups of <paramref name="group"/> (the
    /// last group may be short): every range starts on a group boundary.
    /// </summary>
    public static (int Start, int Count) OfGroups(int n, int group, int parts, int index)
    {
        if (group == 1) return Of(n, parts, index);
        var (g0, gc) = Of((n + group - 1) / group, parts, index);
        int start = Math.Min(n, g0 * group);
        return (start, Math.Min(n, (g0 + gc) * group) - start);
    }

    /// <summary>Every part's count, in order.</summary>
    public static int[] Counts(int n, int parts) => Enumerable.Range(0, parts).Select(i => Of(n, parts, i).Count).ToArray();
}
