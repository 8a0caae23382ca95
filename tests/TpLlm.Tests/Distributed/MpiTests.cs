using System.Diagnostics;
using System.Text.Json;
using TpLlm.Tests.Cli;

namespace TpLlm.Tests.Distributed;

/// <summary>Ranks as Open MPI processes (`.ci/run` installs openmpi-bin).</summary>
public class MpiTests
{
    private static int[] Tokens(CliProcess.Result r) => CliProcess.Tokens(r);

    [Theory]
    [InlineData("fortune-llama", 2)]
    [InlineData("fortune-llama", 4)]
    [InlineData("llama3-mini", 2)]
    [InlineData("llama3-mini", 4)]
    public void Mpi_ranks_produce_the_in_process_tokens(string model, int np)
    {
        string folder = model == "llama3-mini" ? Paths.Llama3Mini : Paths.FortuneLlama;
        string ids = model == "llama3-mini" ? "464,2068,7586,21831,18045,625,262,16931,3290,13" : "464,3616,286,1204,318";
        string[] args = ["generate", "--model", folder, "--ids", ids, "--greedy", "--json", "-n", "16", "--tp", np.ToString()];
        var mpi = CliProcess.Mpi(np, null, args);
        var local = CliProcess.Run(args);
        Assert.Equal(Tokens(local), Tokens(mpi));
        Assert.StartsWith("{\"tokens\"", mpi.Stdout); // only rank 0 writes to stdout, and nothing but the output
        Assert.Single(mpi.Stdout.Trim().Split('\n'));
    }

    [Fact]
    public void Two_replicas_of_tp2_serve_two_prompts_each_equal_to_its_single_replica_output()
    {
        var both = CliProcess.Mpi(4, null, "generate", "A day without", "Computers are", "--greedy", "--json", "-n", "12", "--tp", "2", "--dp", "2");
        Assert.True(both.ExitCode == 0, both.Stderr);
        using var doc = JsonDocument.Parse(both.Stdout);
        var results = doc.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        Assert.Equal(Tokens(CliProcess.Run("generate", "A day without", "--greedy", "--json", "-n", "12", "--tp", "2")), results[0]);
        Assert.Equal(Tokens(CliProcess.Run("generate", "Computers are", "--greedy", "--json", "-n", "12", "--tp", "2")), results[1]);
    }

    [Theory]
    [InlineData("--top-p", "0.9")]
    [InlineData("--top-k", "20")]
    [InlineData("--min-p", "0.05")]
    [InlineData("--gather-logits", "--top-p", "0.9")]
    public void Sampled_tokens_under_mpirun_equal_thread_ranks_for_the_same_seed(params string[] mode)
    {
        string[] args = ["generate", "A day without", "--json", "-n", "24", "--tp", "2", "--seed", "7", "--temperature", "1.2", .. mode];
        Assert.Equal(Tokens(CliProcess.Run(args)), Tokens(CliProcess.Mpi(2, null, args)));
    }

    [Fact]
    public void Unseeded_sampling_under_mpirun_succeeds_every_time()
    {
        // each process used to seed from its own clock: the ranks drew different numbers and none or two claimed the token
        for (int i = 0; i < 5; i++)
        {
            var r = CliProcess.Mpi(2, null, "generate", "A day without", "--json", "-n", "24", "--tp", "2", "--temperature", "1.5", "--top-p", "0.95", "--ignore-eos");
            Assert.Equal(24, Tokens(r).Length);
        }
    }

    [Theory]
    [InlineData(2 /* SIGINT: what a terminal's Ctrl-C sends mpirun, which then sends every rank SIGTERM */)]
    [InlineData(10 /* SIGUSR1: mpirun forwards it to every rank */)]
    public async Task A_signal_to_mpirun_stops_every_rank_at_the_same_step_and_prints_what_was_generated(int signal)
    {
        string model = CliFaultTests.LongContextCopy(Paths.FortuneLlama, 16384);
        var psi = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Paths.Root };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", "2", "dotnet", Path.Combine(AppContext.BaseDirectory, "tpllm.dll"),
                     "generate", "A day without", "-m", model, "-n", "100000", "--greedy", "--ignore-eos", "--tp", "2" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var text = new System.Text.StringBuilder();
        var buffer = new char[256];
        while (text.Length < 20) // wait for streamed text, then interrupt
        {
            int n = p.StandardOutput.Read(buffer, 0, buffer.Length);
            if (n <= 0) Assert.Fail($"no output before the end of the stream; stdout: '{text}', stderr: {await stderr}");
            text.Append(buffer, 0, n);
        }
        Assert.Equal(0, CliFaultTests.Kill(p.Id, signal));
        text.Append(await p.StandardOutput.ReadToEndAsync());
        Assert.True(p.WaitForExit(20_000), "did not stop within 20 s of the signal");
        string err = await stderr;
        Assert.True(err.Contains("stopped: cancelled (Ctrl-C)"), $"no summary; exit code {p.ExitCode}; stdout: '{text}'; stderr: {err}");
        // mpirun reports a job it was asked to kill (SIGINT) as failed; a forwarded SIGUSR1 ends it normally
        if (signal == 10) Assert.True(p.ExitCode == 0, $"exit code {p.ExitCode}; stderr: {err}");
        const string greedy = " a man to his children.\n\t\t-- Lao Tse, \"Tao Te Ching\"\n";
        string got = text.ToString().TrimEnd('\n');
        Assert.True(got.Length >= 20 && (greedy.StartsWith(got, StringComparison.Ordinal) || got.StartsWith(greedy, StringComparison.Ordinal)),
            $"printed '{got}', not the greedy continuation '{greedy}'");
        Assert.DoesNotContain('\u001b', got);
    }

    [Theory]
    [InlineData("3:load", "rank 3 failed", "not found for rank 3")]
    [InlineData("1:kernel", "rank 1 failed", "kernel failure on rank 1")]
    [InlineData("2:collective", "rank 2 failed", "MPI_ERR_TRUNCATE")]
    public void A_fault_on_one_rank_ends_every_rank_promptly_with_its_message(string fault, string who, string message)
    {
        var sw = Stopwatch.StartNew();
        var r = CliProcess.Mpi(4, new Dictionary<string, string> { ["TPLLM_INJECT_FAULT"] = fault, ["TPLLM_COLLECTIVE_TIMEOUT"] = "5" },
            "generate", "--ids", "1,2,3", "-n", "5", "--greedy", "--tp", "4", "--json");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(who, r.Stderr);
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain('\u001b', r.Stdout); // the messages of a failing rank wrote keypad escape codes to its pseudo-terminal's stdout
        // 2–4 s here; the bound leaves room for a busy CI machine, and a rank that never returned would still fail it
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed.TotalSeconds:F1} s");
    }

    [Theory]
    [InlineData("3:load", "not found for rank 3")]
    [InlineData("1:kernel", "kernel failure on rank 1")]
    [InlineData("2:collective", "reduces 3")]
    public void The_same_faults_end_in_process_ranks_with_the_message(string fault, string message)
    {
        var sw = Stopwatch.StartNew();
        var r = CliProcess.Start(new Dictionary<string, string> { ["TPLLM_INJECT_FAULT"] = fault }, "generate", "--ids", "1,2,3", "-n", "5", "--greedy", "--tp", "4");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        // ~1 s here; a rank left waiting would hold the process for the 120 s collective timeout
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed.TotalSeconds:F1} s");
    }
}
