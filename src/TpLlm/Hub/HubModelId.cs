using System.Text.RegularExpressions;

namespace TpLlm.Hub;

/// <summary>A Hugging Face Hub model id with an optional revision: <c>org/name</c>, <c>name</c>, <c>org/name@revision</c>.</summary>
/// <param name="Repo">The repository id (<c>Qwen/Qwen2.5-0.5B-Instruct</c>).</param>
/// <param name="Revision">A branch, tag or commit (default <c>main</c>).</param>
public sealed partial record HubModelId(string Repo, string Revision)
{
    /// <summary>The revision when none is given.</summary>
    public const string DefaultRevision = "main";

    // the Hub's rules for a repo id: one optional namespace, names of letters, digits, '-', '_', '.', not starting or
    // ending with '-' or '.', no '--' or '..'
    [GeneratedRegex(@"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")]
    private static partial Regex RepoPattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")]
    private static partial Regex RevisionPattern();

    /// <summary>The folder of the repository in the cache: <c>models--org--name</c>.</summary>
    public string CacheFolderName => "models--" + Repo.Replace("/", "--");

    /// <summary>True when the revision is a full commit hash.</summary>
    public bool IsCommit => IsCommitHash(Revision);

    /// <summary>True for a full commit hash: 40 lowercase hex digits.</summary>
    public static bool IsCommitHash(string s) => s.Length == 40 && s.All(char.IsAsciiHexDigitLower);

    /// <summary>Parses <paramref name="text"/>; null when it is not shaped like a Hub id (a path, say).</summary>
    public static HubModelId? TryParse(string text)
    {
        int at = text.IndexOf('@');
        string repo = at < 0 ? text : text[..at], revision = at < 0 ? DefaultRevision : text[(at + 1)..];
        if (!RepoPattern().IsMatch(repo) || repo.Contains("--") || repo.Contains("..") || repo.EndsWith('.') || repo.EndsWith('-')) return null;
        if (!RevisionPattern().IsMatch(revision) || revision.Contains("..")) return null;
        return new HubModelId(repo, revision);
    }

    /// <inheritdoc/>
    public override string ToString() => Revision == DefaultRevision ? Repo : $"{Repo}@{Revision}";
}
