using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace TpLlm.Hub;

/// <summary>
/// Turns a Hub model id into a snapshot folder of the shared cache, downloading what is missing, as
/// <c>huggingface_hub.snapshot_download</c> does for the files TpLlm reads: the revision is resolved to a commit through
/// the Hub's model info (<c>/api/models/{repo}/revision/{revision}</c>), each missing file fetched from
/// <c>/{repo}/resolve/{commit}/{file}</c> into <c>blobs/&lt;etag&gt;.incomplete</c> — continued from the bytes already
/// there, in the same run after a dropped connection (a few times) and in a later one — checked (size, and the sha256
/// of LFS files), then linked into <c>snapshots/&lt;commit&gt;/</c>. One process downloads a blob at a time (a lock
/// in the cache, which Python's filelock honours too); the others wait and find it done. With <c>HF_HUB_OFFLINE</c>,
/// only the cache is read.
/// </summary>
public sealed class HubResolver
{
    /// <summary>Attempts at one file within a run (the first and the continuations after a failure).</summary>
    public const int Attempts = 5;

    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = true, // to the CDN for LFS files; .NET drops Authorization when the host changes
        ConnectTimeout = TimeSpan.FromSeconds(30),
        AutomaticDecompression = DecompressionMethods.None,
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(60);

    private readonly HubSettings _settings;
    private readonly TextWriter? _progress;

    /// <summary>Resolves with <paramref name="settings"/>, writing progress (a line per file, a bar for large ones) to <paramref name="progress"/>.</summary>
    public HubResolver(HubSettings settings, TextWriter? progress = null)
    {
        _settings = settings;
        _progress = progress;
    }

    /// <summary>The snapshot folder of <paramref name="id"/>, complete with the files TpLlm reads.</summary>
    /// <exception cref="HubException">Unknown or gated model, offline and not cached, or a download that failed.</exception>
    public string Resolve(HubModelId id)
    {
        var cache = new HubCache(_settings.CacheDir, id);
        if (_settings.Offline) return Cached(id, cache, "HF_HUB_OFFLINE is set");
        (string Commit, HubFile[] Files) info;
        try
        {
            info = ModelInfo(id);
        }
        catch (HttpRequestException e) when (e.StatusCode is null && cache.CachedCommit(id.Revision) is not null)
        {
            _progress?.WriteLine($"tpllm: cannot reach {_settings.Endpoint} ({e.Message}); using the cached snapshot");
            return Cached(id, cache, "the Hub is unreachable");
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw new HubException($"{id}: cannot reach the Hub at {_settings.Endpoint}: {e.Message} (set HF_HUB_OFFLINE=1 to use the cache only)", e);
        }
        var (commit, files) = info;
        var needed = files.Where(f => HubFile.IsNeeded(f.Name)).ToArray();
        if (!needed.Any(f => f.Name == "config.json"))
            throw new HubException($"{id}: the repository has no config.json at {commit[..12]}; TpLlm reads Hugging Face model folders (or a local .gguf file)");
        if (!needed.Any(f => f.Name.EndsWith(".safetensors", StringComparison.Ordinal)))
            throw new HubException($"{id}: the repository has no .safetensors weights at {commit[..12]} (only {string.Join(", ", files.Select(f => Path.GetExtension(f.Name)).Where(e => e.Length > 0).Distinct().Take(6))}); TpLlm reads safetensors");
        _progress?.WriteLine($"tpllm: {id} is commit {commit} on {_settings.Endpoint}");
        foreach (var f in needed)
            if (!cache.HasFile(commit, f.Name, f.Size)) Download(id, cache, commit, f);
        cache.WriteRef(id.Revision, commit);
        return cache.Snapshot(commit);
    }

    // the snapshot the cache alone gives, or why not
    private string Cached(HubModelId id, HubCache cache, string why)
    {
        var commit = cache.CachedCommit(id.Revision)
            ?? throw new HubException($"{id}: not in the cache {_settings.CacheDir} and {why} (no {(id.IsCommit ? "snapshots/" : "refs/")}{id.Revision} under {cache.RepoDir})");
        var snapshot = cache.Snapshot(commit);
        if (!File.Exists(Path.Combine(snapshot, "config.json")))
            throw new HubException($"{id}: the cached snapshot {snapshot} has no config.json and {why}");
        return snapshot;
    }

    private (string Commit, HubFile[] Files) ModelInfo(HubModelId id)
    {
        var url = $"{_settings.Endpoint}/api/models/{id.Repo}/revision/{Uri.EscapeDataString(id.Revision)}?blobs=true";
        using var request = Request(HttpMethod.Get, url);
        using var response = Http.Send(request, HttpCompletionOption.ResponseContentRead);
        Check(id, response, "model info");
        using var stream = response.Content.ReadAsStream();
        try
        {
            using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 16 });
            var root = doc.RootElement;
            string commit = root.GetProperty("sha").GetString() ?? "";
            if (!HubModelId.IsCommitHash(commit))
                throw new HubException($"{id}: the Hub's model info gives commit '{commit}', not a 40-digit hash");
            var files = new List<HubFile>();
            foreach (var s in root.GetProperty("siblings").EnumerateArray())
            {
                string name = s.GetProperty("rfilename").GetString() ?? "";
                if (name.Length == 0 || name.StartsWith('/') || name.Split('/').Any(p => p is "" or "." or ".."))
                    throw new HubException($"{id}: the Hub lists a file named '{name}', which is not a path inside the repository");
                string? sha = s.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object ? lfs.GetProperty("sha256").GetString() : null;
                long size = sha is not null && lfs.TryGetProperty("size", out var ls) ? ls.GetInt64() : s.TryGetProperty("size", out var sz) ? sz.GetInt64() : -1;
                string etag = sha ?? (s.TryGetProperty("blobId", out var b) ? b.GetString() : null) ?? "";
                if (!HubFile.IsNeeded(name)) continue;
                if (etag.Length is not (40 or 64) || !etag.All(char.IsAsciiHexDigitLower) || size < 0)
                    throw new HubException($"{id}: the Hub's model info gives '{name}' no usable blob id and size (etag '{etag}', size {size})");
                files.Add(new HubFile(name, size, etag, sha));
            }
            return (commit, [.. files]);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new HubException($"{id}: the Hub's model info from {url} is malformed: {e.Message}", e);
        }
    }

    private HttpRequestMessage Request(HttpMethod method, string url)
    {
        var r = new HttpRequestMessage(method, url);
        r.Headers.UserAgent.Add(new ProductInfoHeaderValue("tpllm", typeof(HubResolver).Assembly.GetName().Version?.ToString(3) ?? "0"));
        if (_settings.Token is { } token) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return r;
    }

    private void Check(HubModelId id, HttpResponseMessage response, string what)
    {
        switch ((int)response.StatusCode)
        {
            case >= 200 and < 300:
                return;
            case 401 or 403:
                throw new HubException($"{id}: this model is gated or private: accept its license on the Hub and set HF_TOKEN (HTTP {(int)response.StatusCode}{(_settings.Token is null ? ", no token was sent" : ", with the token given")})");
            case 404:
                throw new HubException($"{id}: not found on {_settings.Endpoint} (HTTP 404 for the {what}): check the model id{(id.Revision == HubModelId.DefaultRevision ? "" : " and the revision '" + id.Revision + "'")}");
            default:
                throw new HubException($"{id}: the Hub answered HTTP {(int)response.StatusCode} {response.ReasonPhrase} for the {what}");
        }
    }

    // one process per blob; the others wait for its lock, then find the blob there
    private void Download(HubModelId id, HubCache cache, string commit, HubFile f)
    {
        var blob = cache.Blob(f.Etag);
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        Directory.CreateDirectory(Path.GetDirectoryName(cache.Lock(f.Etag))!);
        using (AcquireLock(cache.Lock(f.Etag), f.Name))
        {
            if (!(File.Exists(blob) && new FileInfo(blob).Length == f.Size)) Fetch(id, commit, f, blob);
        }
        cache.Link(commit, f.Name, f.Etag);
    }

    private FileStream AcquireLock(string path, string file)
    {
        bool told = false;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException)
            {
                if (!told) _progress?.WriteLine($"tpllm: waiting for another process downloading {file}");
                told = true;
                Thread.Sleep(100);
            }
        }
    }

    private void Fetch(HubModelId id, string commit, HubFile f, string blob)
    {
        var incomplete = blob + ".incomplete";
        var url = $"{_settings.Endpoint}/{id.Repo}/resolve/{commit}/{string.Join('/', f.Name.Split('/').Select(Uri.EscapeDataString))}";
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                FetchOnce(id, f, url, incomplete);
                break;
            }
            catch (Exception e) when (e is IOException or HttpRequestException { StatusCode: null } or OperationCanceledException && attempt < Attempts)
            {
                long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
                _progress?.WriteLine($"tpllm: {f.Name}: {e.Message}; continuing from byte {have} (attempt {attempt + 1} of {Attempts})");
                Thread.Sleep(TimeSpan.FromMilliseconds(200 * attempt));
            }
            catch (Exception e) when (e is IOException or HttpRequestException { StatusCode: null } or OperationCanceledException)
            {
                throw new HubException($"{id}: downloading {f.Name} failed {Attempts} times, last: {e.Message} (run again to continue from the bytes already in {incomplete})", e);
            }
        }
        if (f.Sha256 is { } expected)
        {
            string got;
            using (var s = new FileStream(incomplete, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
                got = Convert.ToHexStringLower(SHA256.HashData(s));
            if (got != expected)
            {
                File.Delete(incomplete);
                throw new HubException($"{id}: {f.Name} downloaded with sha256 {got}, but the Hub gives {expected}; the partial file was removed, run again");
            }
        }
        File.Move(incomplete, blob, overwrite: true);
    }

    private void FetchOnce(HubModelId id, HubFile f, string url, string incomplete)
    {
        using var file = new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        long have = file.Length > f.Size ? 0 : file.Length;
        file.SetLength(have);
        if (have == f.Size && f.Size > 0) return;
        using var request = Request(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var stall = new CancellationTokenSource(StallTimeout);
        using var response = Http.Send(request, HttpCompletionOption.ResponseHeadersRead, stall.Token);
        Check(id, response, f.Name);
        if (have > 0 && response.StatusCode != HttpStatusCode.PartialContent) have = 0; // the server sent the whole file
        // the Hub's own answer names the blob (X-Linked-Etag, else ETag); after a redirect to a CDN the ETag is the
        // CDN's, so only the sha256 check below vouches for the bytes
        bool fromHub = response.RequestMessage?.RequestUri is { } final && final.Host == new Uri(_settings.Endpoint).Host && final.Port == new Uri(_settings.Endpoint).Port;
        var etag = (response.Headers.TryGetValues("X-Linked-Etag", out var le) ? le.First() : fromHub ? response.Headers.ETag?.Tag : null)?.Replace("W/", "").Trim('"');
        if (etag is not null && etag != f.Etag)
            throw new HubException($"{id}: {f.Name} is served with etag {etag}, but the model info gave {f.Etag}: the repository changed, run again");
        file.SetLength(have);
        file.Position = have;
        using var body = response.Content.ReadAsStream(stall.Token);
        var buffer = new byte[1 << 20];
        var bar = new ProgressBar(_progress, f.Name, f.Size, have);
        while (true)
        {
            stall.CancelAfter(StallTimeout);
            int n = body.ReadAsync(buffer, stall.Token).AsTask().GetAwaiter().GetResult();
            if (n == 0) break;
            if (file.Position + n > f.Size) throw new HubException($"{id}: {f.Name} is longer than the {f.Size} bytes the Hub gives");
            file.Write(buffer, 0, n);
            bar.Update(file.Position);
        }
        file.Flush(true);
        bar.Done(file.Position);
        if (file.Position != f.Size) throw new IOException($"the connection ended after {file.Position} of {f.Size} bytes");
    }

    // a line per file on the progress writer, redrawn at most twice a second for files over a megabyte
    private sealed class ProgressBar(TextWriter? w, string name, long size, long start)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _lastDraw = -1;

        public void Update(long at)
        {
            if (w is null || size < 1 << 20 || _clock.ElapsedMilliseconds - _lastDraw < 500) return;
            _lastDraw = _clock.ElapsedMilliseconds;
            w.Write($"\rtpllm: downloading {name}: {100.0 * at / size,5:F1} % of {size / 1e6:F1} MB, {(at - start) / 1e6 / Math.Max(_clock.Elapsed.TotalSeconds, 1e-3),6:F1} MB/s");
        }

        public void Done(long at)
        {
            if (w is null) return;
            if (_lastDraw >= 0) w.Write("\r");
            w.WriteLine($"tpllm: downloaded {name} ({at / 1e6:F1} MB{(start > 0 ? $", continued from byte {start}" : "")}) in {_clock.Elapsed.TotalSeconds:F1} s");
        }
    }
}
