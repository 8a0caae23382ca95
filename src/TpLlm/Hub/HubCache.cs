namespace TpLlm.Hub;

/// <summary>
/// One repository's folder in the cache Python's <c>huggingface_hub</c> keeps, laid out as it lays it out:
/// <c>models--org--name/blobs/&lt;etag&gt;</c> (the files, named by their etag: an LFS file's sha256, else its git
/// blob id), <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> (relative symbolic links to the blobs), <c>refs/&lt;revision&gt;</c>
/// (the commit a branch or tag was last seen at), and locks under <c>.locks/models--org--name/</c>.
/// </summary>
public sealed class HubCache(string cacheDir, HubModelId id)
{
    /// <summary>The repository's folder.</summary>
    public string RepoDir { get; } = Path.Combine(cacheDir, id.CacheFolderName);

    /// <summary>A blob's path.</summary>
    public string Blob(string etag) => Path.Combine(RepoDir, "blobs", etag);

    /// <summary>The snapshot folder of a commit.</summary>
    public string Snapshot(string commit) => Path.Combine(RepoDir, "snapshots", commit);

    /// <summary>The lock file that one process holds while it downloads a blob.</summary>
    public string Lock(string etag) => Path.Combine(cacheDir, ".locks", id.CacheFolderName, etag + ".lock");

    /// <summary>The commit a revision resolves to from the cache alone: itself when it is a commit, else its ref; null when unknown.</summary>
    public string? CachedCommit(string revision)
    {
        if (HubModelId.IsCommitHash(revision)) return Directory.Exists(Snapshot(revision)) ? revision : null;
        var path = Path.Combine(RepoDir, "refs", revision);
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() is var c && HubModelId.IsCommitHash(c) ? c : null : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Records that <paramref name="revision"/> is at <paramref name="commit"/> (nothing for a commit itself).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        var path = Path.Combine(RepoDir, "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp" + Environment.ProcessId;
        File.WriteAllText(tmp, commit);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>True when the snapshot has <paramref name="file"/> and it leads to a complete blob of <paramref name="size"/> bytes.</summary>
    public bool HasFile(string commit, string file, long size)
    {
        var path = Path.Combine(Snapshot(commit), file);
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1); // through the link
            return f.Length == size;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Points <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> at the blob, by a relative link as huggingface_hub makes.</summary>
    public void Link(string commit, string file, string etag)
    {
        var link = Path.Combine(Snapshot(commit), file);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        int depth = file.Count(ch => ch == '/');
        var target = string.Concat(Enumerable.Repeat("../", depth + 2)) + "blobs/" + etag;
        var tmp = link + ".tmp" + Environment.ProcessId;
        if (File.Exists(tmp) || new FileInfo(tmp).LinkTarget is not null) File.Delete(tmp);
        File.CreateSymbolicLink(tmp, target);
        File.Move(tmp, link, overwrite: true);
    }
}
