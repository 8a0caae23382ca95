using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TpLlm.Tests.Hub;

/// <summary>
/// The Hugging Face Hub's routes that model downloads use, on loopback: model info with its file list
/// (<c>GET /api/models/{repo}/revision/{revision}?blobs=true</c>: sha, siblings with size, blobId and lfs.sha256) and
/// files (<c>GET /{repo}/resolve/{revision}/{file}</c> with X-Repo-Commit, ETag / X-Linked-Etag, Content-Length,
/// Range → 206). Gated repositories want a bearer token; the first requests of a file can be cut short; every request
/// is counted.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    public sealed record Repo(string Commit, IReadOnlyDictionary<string, byte[]> Files, bool Gated = false);

    private readonly WebApplication _app;
    private readonly Dictionary<string, Repo> _repos;

    public string Url { get; }
    public string Token { get; } = "hf_fake_token";
    public ConcurrentDictionary<string, int> FileGets { get; } = new();
    public ConcurrentQueue<string> Ranges { get; } = new();
    public int InfoRequests;
    /// <summary>Cut this many GETs of each file short after <see cref="DropAfter"/> bytes.</summary>
    public int DropFirst { get; set; }
    public long DropAfter { get; set; } = 1 << 20;
    /// <summary>Answer an LFS file's resolve with a 302 to a "CDN" on another host name (localhost), as the Hub does.</summary>
    public bool RedirectLfs { get; set; }
    public ConcurrentQueue<string> CdnAuthorization { get; } = new();
    /// <summary>Pause between 256 KB chunks (to make two downloaders overlap).</summary>
    public TimeSpan ChunkDelay { get; set; }

    private FakeHub(Dictionary<string, Repo> repos)
    {
        _repos = repos;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/api/models/{**path}", Info);
        _app.MapGet("/cdn/{**path}", Cdn);
        _app.MapGet("/{**path}", Resolve);
        _app.StartAsync().GetAwaiter().GetResult();
        Url = _app.Urls.First();
    }

    public static FakeHub Start(Dictionary<string, Repo> repos) => new(repos);

    /// <summary>fortune-llama's folder as the repository tpllm/fortune-llama, with files TpLlm must not fetch beside it.</summary>
    public static Repo FortuneRepo(bool gated = false)
    {
        var files = Directory.GetFiles(Paths.FortuneLlama).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        files["pytorch_model.bin"] = new byte[3000];
        files["onnx/model.onnx"] = new byte[2000];
        files["README.md"] = "# fortune-llama"u8.ToArray();
        return new Repo("0123456789abcdef0123456789abcdef01234567", files, gated);
    }

    public static bool IsLfs(string name) => name.EndsWith(".safetensors") || name.EndsWith(".bin") || name.EndsWith(".onnx");

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    // git's blob id: sha1 of "blob <size>\0" + content
    public static string GitBlobId(byte[] b) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));

    public static string Etag(string name, byte[] b) => IsLfs(name) ? Sha256(b) : GitBlobId(b);

    private bool Authorized(HttpContext ctx, Repo repo, out int status)
    {
        status = 0;
        if (!repo.Gated) return true;
        var auth = ctx.Request.Headers.Authorization.ToString();
        status = auth.Length == 0 ? 401 : auth == "Bearer " + Token ? 0 : 403;
        return status == 0;
    }

    private (Repo? Repo, string Tail) Find(string path, string marker)
    {
        int at = path.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return (null, "");
        return (_repos.TryGetValue(path[..at], out var r) ? r : null, path[(at + marker.Length)..]);
    }

    private async Task Info(HttpContext ctx, string path)
    {
        Interlocked.Increment(ref InfoRequests);
        var (repo, revision) = Find(path, "/revision/");
        if (repo is null || !(revision is "main" || revision == repo.Commit)) { ctx.Response.StatusCode = 404; return; }
        if (!Authorized(ctx, repo, out int status)) { ctx.Response.StatusCode = status; return; }
        var siblings = repo.Files.Select(kv => IsLfs(kv.Key)
            ? (object)new { rfilename = kv.Key, size = kv.Value.Length, blobId = GitBlobId(kv.Value), lfs = new { sha256 = Sha256(kv.Value), size = kv.Value.Length, pointerSize = 134 } }
            : new { rfilename = kv.Key, size = kv.Value.Length, blobId = GitBlobId(kv.Value) });
        await ctx.Response.WriteAsJsonAsync(new { id = path[..path.IndexOf("/revision/")], sha = repo.Commit, siblings });
    }

    private async Task Resolve(HttpContext ctx, string path)
    {
        var (repo, rest) = Find(path, "/resolve/");
        int slash = rest.IndexOf('/');
        if (repo is null || slash < 0) { ctx.Response.StatusCode = 404; return; }
        string revision = rest[..slash], file = Uri.UnescapeDataString(rest[(slash + 1)..]);
        if (!(revision is "main" || revision == repo.Commit) || !repo.Files.TryGetValue(file, out var data)) { ctx.Response.StatusCode = 404; return; }
        if (!Authorized(ctx, repo, out int status)) { ctx.Response.StatusCode = status; return; }
        if (RedirectLfs && IsLfs(file))
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
            ctx.Response.Headers["X-Linked-Etag"] = $"\"{Etag(file, data)}\"";
            ctx.Response.Headers["X-Linked-Size"] = data.Length.ToString();
            ctx.Response.Headers.Location = $"http://localhost:{new Uri(Url).Port}/cdn/{path[..path.IndexOf("/resolve/")]}/{Uri.EscapeDataString(file)}";
            return;
        }
        await Send(ctx, repo, file, data);
    }

    // the CDN: the bytes, its own ETag, no X-Linked-Etag
    private async Task Cdn(HttpContext ctx, string path)
    {
        int slash = path.LastIndexOf('/');
        string file = Uri.UnescapeDataString(path[(slash + 1)..]);
        if (!_repos.TryGetValue(path[..slash], out var repo) || !repo.Files.TryGetValue(file, out var data)) { ctx.Response.StatusCode = 404; return; }
        CdnAuthorization.Enqueue(ctx.Request.Headers.Authorization.ToString());
        await Send(ctx, repo, file, data, cdn: true);
    }

    private async Task Send(HttpContext ctx, Repo repo, string file, byte[] data, bool cdn = false)
    {
        int n = FileGets.AddOrUpdate(file, 1, (_, c) => c + 1);
        long from = 0;
        var range = ctx.Request.Headers.Range.ToString();
        if (range.Length > 0)
        {
            Ranges.Enqueue($"{file} {range}");
            from = long.Parse(range["bytes=".Length..range.IndexOf('-')]);
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{data.Length - 1}/{data.Length}";
        }
        if (cdn) ctx.Response.Headers.ETag = "\"0123456789abcdef0123456789abcdef-3\""; // an S3-style ETag, not the blob's
        else
        {
            ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
            ctx.Response.Headers.ETag = $"\"{Etag(file, data)}\"";
            if (IsLfs(file)) ctx.Response.Headers["X-Linked-Etag"] = $"\"{Etag(file, data)}\"";
        }
        ctx.Response.Headers.AcceptRanges = "bytes";
        ctx.Response.ContentLength = data.Length - from;
        long end = n <= DropFirst ? Math.Min(data.Length, from + DropAfter) : data.Length;
        for (long at = from; at < end; at += 256 << 10)
        {
            await ctx.Response.Body.WriteAsync(data.AsMemory((int)at, (int)Math.Min(256 << 10, end - at)));
            await ctx.Response.Body.FlushAsync();
            if (ChunkDelay > TimeSpan.Zero) await Task.Delay(ChunkDelay);
        }
        if (end < data.Length) ctx.Abort(); // the connection drops mid-file
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
