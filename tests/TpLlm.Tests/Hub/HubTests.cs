using System.Diagnostics;
using TpLlm.Hub;
using TpLlm.Models;
using TpLlm.Tests.Cli;

namespace TpLlm.Tests.Hub;

/// <summary>
/// Hub ids against a fake Hub on loopback serving fortune-llama: huggingface_hub's cache layout, cache hits, downloads
/// continued after a dropped connection (in the run and in the next one), gated and unknown models, offline mode, and
/// two processes fetching the same model at once.
/// </summary>
public class HubTests
{
    private const string Repo = "tpllm/fortune-llama";

    private static HubSettings Settings(FakeHub hub, string cache, string? token = null, bool offline = false) => new(hub.Url, cache, token, offline);

    private static string[] Needed(FakeHub.Repo repo) => [.. repo.Files.Keys.Where(HubFile.IsNeeded)];

    [Fact]
    public async Task A_download_lands_in_the_huggingface_hub_layout_and_a_second_run_is_a_cache_hit()
    {
        var repo = FakeHub.FortuneRepo();
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        var cache = Paths.TempDir();
        var progress = new StringWriter();
        var snapshot = new HubResolver(Settings(hub, cache), progress).Resolve(HubModelId.TryParse(Repo)!);

        var repoDir = Path.Combine(cache, "models--tpllm--fortune-llama");
        Assert.Equal(Path.Combine(repoDir, "snapshots", repo.Commit), snapshot);
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main")));
        foreach (var name in Needed(repo))
        {
            var link = new FileInfo(Path.Combine(snapshot, name));
            var etag = FakeHub.Etag(name, repo.Files[name]);
            Assert.Equal("../../blobs/" + etag, link.LinkTarget); // relative, as huggingface_hub links
            Assert.Equal(repo.Files[name], File.ReadAllBytes(Path.Combine(repoDir, "blobs", etag)));
        }
        Assert.Equal(Needed(repo).Order(), hub.FileGets.Keys.Order()); // never .bin, ONNX or the README
        Assert.Contains($"{Repo} is commit {repo.Commit}", progress.ToString());
        Assert.Empty(Directory.GetFiles(Path.Combine(repoDir, "blobs"), "*.incomplete"));
        using (var folder = ModelFolder.Open(snapshot, requireTokenizer: true)) Assert.Equal(6, folder.Config.NumLayers);

        var gets = hub.FileGets.Values.Sum();
        Assert.Equal(snapshot, new HubResolver(Settings(hub, cache)).Resolve(HubModelId.TryParse(Repo)!));
        Assert.Equal(gets, hub.FileGets.Values.Sum()); // nothing downloaded again
        int info = hub.InfoRequests;
        Assert.Equal(snapshot, new HubResolver(Settings(hub, cache, offline: true)).Resolve(HubModelId.TryParse(Repo)!));
        Assert.Equal(info, hub.InfoRequests); // offline: not even the model info
        Assert.Equal(snapshot, new HubResolver(Settings(hub, cache, offline: true)).Resolve(HubModelId.TryParse($"{Repo}@{repo.Commit}")!));
    }

    [Fact]
    public async Task Lfs_files_redirected_to_a_cdn_are_fetched_without_the_token_and_checked_by_sha256()
    {
        var repo = FakeHub.FortuneRepo(gated: true);
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        hub.RedirectLfs = true;
        hub.DropFirst = 1; // and the CDN cuts the first GET of each file short: the continuation goes to the CDN too
        var snapshot = new HubResolver(Settings(hub, Paths.TempDir(), hub.Token)).Resolve(HubModelId.TryParse(Repo)!);
        foreach (var name in Needed(repo)) Assert.Equal(repo.Files[name], File.ReadAllBytes(Path.Combine(snapshot, name)));
        Assert.NotEmpty(hub.CdnAuthorization);
        Assert.All(hub.CdnAuthorization, a => Assert.Equal("", a)); // the token stays with the Hub
    }

    [Fact]
    public async Task A_dropped_connection_continues_from_the_bytes_already_there_in_the_same_run()
    {
        var repo = FakeHub.FortuneRepo();
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        hub.DropFirst = 2; // each file's first two GETs end after 1 MB
        var cache = Paths.TempDir();
        var progress = new StringWriter();
        var snapshot = new HubResolver(Settings(hub, cache), progress).Resolve(HubModelId.TryParse(Repo)!);
        const string big = "model-00001-of-00002.safetensors";
        Assert.Equal(repo.Files[big], File.ReadAllBytes(Path.Combine(snapshot, big)));
        Assert.Equal(3, hub.FileGets[big]);
        // each continuation asks for the bytes after those that arrived (how many of the cut GET's bytes arrive before the
        // reset varies), and the second starts past the first
        var starts = hub.Ranges.Where(r => r.StartsWith(big + " ")).Select(r => long.Parse(r[(big.Length + 7)..^1])).ToArray();
        Assert.Equal(2, starts.Length);
        Assert.InRange(starts[0], 1, 1 << 20);
        Assert.InRange(starts[1], starts[0] + 1, starts[0] + (1 << 20));
        Assert.Contains($"continuing from byte {starts[0]}", progress.ToString());
    }

    [Fact]
    public async Task A_later_run_continues_an_incomplete_file_and_a_corrupt_one_is_refused_then_fetched_again()
    {
        var repo = FakeHub.FortuneRepo();
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        var cache = Paths.TempDir();
        const string big = "model-00001-of-00002.safetensors";
        var blobs = Path.Combine(cache, "models--tpllm--fortune-llama", "blobs");
        Directory.CreateDirectory(blobs);
        var incomplete = Path.Combine(blobs, FakeHub.Sha256(repo.Files[big]) + ".incomplete");
        File.WriteAllBytes(incomplete, repo.Files[big][..5_000_000]); // what an interrupted run (ours or Python's) left
        var snapshot = new HubResolver(Settings(hub, cache)).Resolve(HubModelId.TryParse(Repo)!);
        Assert.Equal([$"{big} bytes=5000000-"], hub.Ranges.Where(r => r.StartsWith(big)));
        Assert.Equal(repo.Files[big], File.ReadAllBytes(Path.Combine(snapshot, big)));

        // a partial file whose bytes are wrong: the sha256 check refuses it and removes it, the next run starts over
        var other = Paths.TempDir();
        var blobs2 = Path.Combine(other, "models--tpllm--fortune-llama", "blobs");
        Directory.CreateDirectory(blobs2);
        File.WriteAllBytes(Path.Combine(blobs2, FakeHub.Sha256(repo.Files[big]) + ".incomplete"), new byte[4_000_000]);
        var e = Assert.Throws<HubException>(() => new HubResolver(Settings(hub, other)).Resolve(HubModelId.TryParse(Repo)!));
        Assert.Contains($"{big} downloaded with sha256", e.Message);
        Assert.Contains($"but the Hub gives {FakeHub.Sha256(repo.Files[big])}", e.Message);
        var again = new HubResolver(Settings(hub, other)).Resolve(HubModelId.TryParse(Repo)!);
        Assert.Equal(repo.Files[big], File.ReadAllBytes(Path.Combine(again, big)));
    }

    [Fact]
    public async Task Gated_unknown_and_offline_misses_say_what_to_do()
    {
        await using var hub = FakeHub.Start(new() { ["org/gated"] = FakeHub.FortuneRepo(gated: true) });
        var cache = Paths.TempDir();
        string Fail(string id, string? token = null, bool offline = false) =>
            Assert.Throws<HubException>(() => new HubResolver(Settings(hub, cache, token, offline)).Resolve(HubModelId.TryParse(id)!)).Message;
        Assert.Equal("org/gated: this model is gated or private: accept its license on the Hub and set HF_TOKEN (HTTP 401, no token was sent)", Fail("org/gated"));
        Assert.Equal("org/gated: this model is gated or private: accept its license on the Hub and set HF_TOKEN (HTTP 403, with the token given)", Fail("org/gated", "hf_wrong"));
        Assert.Equal($"org/nope: not found on {hub.Url} (HTTP 404 for the model info): check the model id", Fail("org/nope"));
        Assert.Equal($"org/gated@v9: not found on {hub.Url} (HTTP 404 for the model info): check the model id and the revision 'v9'", Fail("org/gated@v9", hub.Token));
        Assert.StartsWith($"org/gated: not in the cache {cache} and HF_HUB_OFFLINE is set (no refs/main under ", Fail("org/gated", offline: true));
        var snapshot = new HubResolver(Settings(hub, cache, hub.Token)).Resolve(HubModelId.TryParse("org/gated")!);
        Assert.True(File.Exists(Path.Combine(snapshot, "config.json")));
    }

    [Fact]
    public async Task The_cli_takes_a_hub_id_and_two_processes_fetching_it_at_once_download_each_file_once()
    {
        var repo = FakeHub.FortuneRepo();
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        hub.ChunkDelay = TimeSpan.FromMilliseconds(40); // about two seconds for the large file: the two runs overlap even under load
        var cache = Paths.TempDir();
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Url, ["HF_HUB_CACHE"] = cache, ["HF_TOKEN"] = "", ["HF_HUB_OFFLINE"] = "", ["HF_HOME"] = cache };
        string[] args = ["generate", "A day without", "--model", Repo, "--greedy", "--max-new-tokens", "20"];
        var runs = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => CliProcess.Start(env, args))));
        using var reference = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.Root, "tests", "fixtures", "fortune-llama", "reference.json")));
        var greedyText = reference.RootElement.GetProperty("prompts")[0].GetProperty("greedy_text").GetString()!;
        foreach (var r in runs)
        {
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.StartsWith(" a man to his children.", r.Stdout);
            Assert.StartsWith(r.Stdout.TrimEnd('\n'), greedyText);
        }
        foreach (var name in Needed(repo)) Assert.Equal(1, hub.FileGets[name]);
        Assert.Contains(runs, r => r.Stderr.Contains("waiting for another process downloading"));
        // offline afterwards, from the cache alone
        var offline = CliProcess.Start(new Dictionary<string, string>(env) { ["HF_HUB_OFFLINE"] = "1" }, args);
        Assert.True(offline.ExitCode == 0, offline.Stderr);
        Assert.Equal(runs[0].Stdout, offline.Stdout);
    }

    [Fact]
    public async Task Ranks_under_mpirun_share_one_download()
    {
        var repo = FakeHub.FortuneRepo();
        await using var hub = FakeHub.Start(new() { [Repo] = repo });
        hub.ChunkDelay = TimeSpan.FromMilliseconds(10);
        var cache = Paths.TempDir();
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Url, ["HF_HUB_CACHE"] = cache, ["HF_TOKEN"] = "", ["HF_HUB_OFFLINE"] = "", ["HF_HOME"] = cache };
        string[] args = ["generate", "--model", Repo, "--ids", "464,3616,286,1204,318", "--greedy", "--json", "-n", "12", "--tp", "2"];
        var mpi = CliProcess.Mpi(2, env, args);
        var local = CliProcess.Run(["generate", "--model", Paths.FortuneLlama, .. args[3..]]);
        Assert.Equal(CliProcess.Tokens(local), CliProcess.Tokens(mpi));
        foreach (var name in Needed(repo)) Assert.Equal(1, hub.FileGets[name]);
        Assert.Single(mpi.Stderr.Split('\n'), l => l.Contains($"{Repo} is commit")); // progress from the root process only
    }
}
