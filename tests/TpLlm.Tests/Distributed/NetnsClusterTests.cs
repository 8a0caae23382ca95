using System.Diagnostics;
using System.Text.Json;
using TpLlm.Tests.Cli;

namespace TpLlm.Tests.Distributed;

/// <summary>Two pretend hosts made by tools/netns-cluster.sh (network namespaces on a bridge, TCP only), up for the class.</summary>
public sealed class NetnsCluster : IDisposable
{
    public static string Script => Path.Combine(Paths.Root, "tools", "netns-cluster.sh");

    public NetnsCluster()
    {
        var r = Shell(Script, "up", "2");
        if (r.ExitCode != 0) throw new InvalidOperationException($"netns-cluster.sh up 2 failed (root and iproute2 needed; .ci/run installs them): {r.Stderr}");
    }

    public void Dispose() => Shell(Script, "down", "2");

    /// <summary>Runs tpllm under mpirun across the hosts (hostfile lines given, or one slot each), with a time bound.</summary>
    internal CliProcess.Result Run(string[]? hosts, string[] mpirun, string[] args, int timeoutMs = 120_000, Action<Process>? whileRunning = null)
    {
        var hostfile = Path.Combine(Paths.TempDir(), "hosts");
        File.WriteAllLines(hostfile, hosts ?? ["10.77.0.1 slots=1", "10.77.0.2 slots=1"]);
        string[] all = ["run", "2", "--hostfile", hostfile, "--oversubscribe", .. mpirun, "--", "dotnet", Path.Combine(AppContext.BaseDirectory, "tpllm.dll"), .. args];
        return Shell(Script, all, timeoutMs, whileRunning);
    }

    internal static CliProcess.Result Shell(string file, params string[] args) => Shell(file, args, 60_000, null);

    private static CliProcess.Result Shell(string file, string[] args, int timeoutMs, Action<Process>? whileRunning)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Paths.Root };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        whileRunning?.Invoke(p); // it may read stdout first
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs))
        {
            p.Kill(true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeoutMs / 1000} s: {stderr.Result}");
        }
        return new CliProcess.Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>
/// Ranks on two hosts over a real TCP/IP stack (tools/netns-cluster.sh): the same tokens and logits as thread ranks,
/// data parallelism across hosts, a killed rank ending the job, and bad hostfiles failing with a message.
/// </summary>
public class NetnsClusterTests(NetnsCluster cluster) : IClassFixture<NetnsCluster>
{
    private static int[] Tokens(CliProcess.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        return [.. JsonDocument.Parse(r.Stdout).RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
    }

    [Theory]
    [InlineData(2, new[] { "10.77.0.1 slots=1", "10.77.0.2 slots=1" })]
    [InlineData(3, new[] { "10.77.0.1 slots=2", "10.77.0.2 slots=1" })]
    public void Ranks_on_two_hosts_give_the_thread_ranks_tokens_and_logits(int tp, string[] hosts)
    {
        string[] gen = ["generate", "--model", Paths.Llama3Mini, "--ids", "464,2068,7586,21831,18045,625,262,16931,3290,13", "--greedy", "--json", "-n", "16", "--tp", tp.ToString()];
        Assert.Equal(Tokens(CliProcess.Run(gen)), Tokens(cluster.Run(hosts, ["-np", tp.ToString()], gen)));
        var here = Path.Combine(Paths.TempDir(), "here.safetensors");
        var there = Path.Combine(Paths.TempDir(), "there.safetensors");
        string[] logits = ["logits", "--model", Paths.FortuneLlama, "--ids", "464,3616,286,1204,318", "--tp", tp.ToString(), "--out"];
        Assert.Equal(0, CliProcess.Run([.. logits, here]).ExitCode);
        var r = cluster.Run(hosts, ["-np", tp.ToString()], [.. logits, there]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var a = new TpLlm.Checkpoints.SafetensorsFile(here);
        using var b = new TpLlm.Checkpoints.SafetensorsFile(there);
        Assert.True(a.ReadF32("logits").Zip(b.ReadF32("logits")).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5f);
    }

    [Fact]
    public void Two_replicas_of_tp2_across_two_hosts_serve_their_prompts()
    {
        var r = cluster.Run(["10.77.0.1 slots=2", "10.77.0.2 slots=2"], ["-np", "4"],
            ["generate", "A day without", "Computers are", "--greedy", "--json", "-n", "12", "--tp", "2", "--dp", "2"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("results").EnumerateArray()
            .Select(x => x.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        Assert.Equal(Tokens(CliProcess.Run("generate", "A day without", "--greedy", "--json", "-n", "12", "--tp", "2")), results[0]);
        Assert.Equal(Tokens(CliProcess.Run("generate", "Computers are", "--greedy", "--json", "-n", "12", "--tp", "2")), results[1]);
    }

    [Fact]
    public void Killing_one_hosts_rank_ends_every_process_within_10_seconds_naming_the_rank()
    {
        string model = CliFaultTests.LongContextCopy(Paths.FortuneLlama, 16384);
        var killedAt = new Stopwatch();
        var r = cluster.Run(null, ["-np", "2"], ["generate", "A day without", "-m", model, "-n", "100000", "--greedy", "--ignore-eos", "--tp", "2"], 120_000, p =>
        {
            // wait until tokens stream, then kill host 2's rank (not mpirun: the host "crashes")
            var buffer = new char[64];
            for (int read = 0; read < 40;)
            {
                int n = p.StandardOutput.Read(buffer, 0, buffer.Length);
                if (n <= 0) return;
                read += n;
            }
            var pids = NetnsCluster.Shell("ip", "netns", "pids", "tpllm-h2").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            foreach (var pid in pids)
                if (File.ReadAllText($"/proc/{pid.Trim()}/cmdline").Contains("tpllm.dll")) Process.GetProcessById(int.Parse(pid)).Kill();
            killedAt.Start();
            Assert.True(p.WaitForExit(10_000), "the job outlived its killed rank by 10 s");
        });
        Assert.True(killedAt.IsRunning, "the rank was never killed: " + r.Stderr);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Matches(@"rank 1\b", r.Stderr);
        var left = NetnsCluster.Shell("ip", "netns", "pids", "tpllm-h1").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain(left, pid => File.Exists($"/proc/{pid.Trim()}/cmdline") && File.ReadAllText($"/proc/{pid.Trim()}/cmdline").Contains("tpllm.dll"));
    }

    [Theory]
    [InlineData("10.77.0.9 slots=1", "host '10.77.0.9'")]
    [InlineData("node-nobody slots=1", "host 'node-nobody'")]
    public void A_host_that_is_not_there_fails_at_once_with_its_name(string bad, string message)
    {
        var sw = Stopwatch.StartNew();
        var r = cluster.Run(["10.77.0.1 slots=1", bad], ["-np", "2"], ["generate", "--ids", "1,2", "-n", "2", "--tp", "2"], 60_000);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed.TotalSeconds:F0} s");
    }
}
