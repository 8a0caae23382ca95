namespace TpLlm.Sampling.Json;

/// <summary>
/// One rank's text tokens sorted by their bytes, each with the length of the prefix it shares with
/// the token before it: walking them in order is a depth-first walk of their trie, so a parse state
/// per depth lets every token be tried by feeding only the bytes its predecessor did not share.
/// <code>
///   ids  ["{", "{\"", "{\"a", "}"]   lcp [0, 1, 2, 0]
/// </code>
/// </summary>
public sealed class SortedTokens
{
    /// <summary>Columns of the rank's slice (id − start), in byte order.</summary>
    public int[] Columns { get; }

    /// <summary>Bytes of each token, in the same order.</summary>
    public byte[][] Bytes { get; }

    /// <summary>Length of the prefix each token shares with the one before it (0 for the first).</summary>
    public int[] SharedPrefix { get; }

    /// <summary>Longest token, in bytes.</summary>
    public int MaxLength { get; }

    /// <summary>
    /// Sorts the ids <c>[start, start + count)</c> whose entry in <paramref name="tokenBytes"/> is
    /// non-empty (null: not text, e.g. a special token) and, if given, passes <paramref name="keep"/>.
    /// </summary>
    public SortedTokens(IReadOnlyList<byte[]?> tokenBytes, int start, int count, Func<byte[], bool>? keep = null)
    {
        var ids = new List<int>(count);
        for (int c = 0; c < count; c++)
            if (start + c < tokenBytes.Count && tokenBytes[start + c] is { Length: > 0 } b && (keep is null || keep(b))) ids.Add(c);
        ids.Sort((a, b) =>
        {
            int order = tokenBytes[start + a]!.AsSpan().SequenceCompareTo(tokenBytes[start + b]);
            return order != 0 ? order : a.CompareTo(b);
        });
        Columns = [.. ids];
        Bytes = new byte[Columns.Length][];
        SharedPrefix = new int[Columns.Length];
        for (int i = 0; i < Columns.Length; i++)
        {
            Bytes[i] = tokenBytes[start + Columns[i]]!;
            MaxLength = Math.Max(MaxLength, Bytes[i].Length);
            if (i > 0) SharedPrefix[i] = Bytes[i].AsSpan().CommonPrefixLength(Bytes[i - 1]);
        }
    }
}
