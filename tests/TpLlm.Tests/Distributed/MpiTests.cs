using System.Diagnostics;
using System.Text.Json;
using TpLlm.Tests.Cli;

namespace TpLlm.Tests.Distributed;

/// <summary>Ranks as Open MPI processes (`.ci/run` installs openmpi-bin).</summary>
public class MpiTests
{
    private static int[] Tokens(CliProcess.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

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
    [InlineData("3:load", "rank 3 failed", "not found for rank 3")]
    [InlineData("1:kernel", "rank 1 failed", "kernel failure on rank 1")]
    [InlineData("2:collective", "rank 2 failed", "MPI_ERR_TRUNCATE")]
    public void A_fault_on_one_rank_ends_every_rank_promptly_with_its_message(string fault, string who, string message)
    {
        var sw = Stopwatch.StartNew();
        var r = CliProcess.Mpi(4, new Dictionary<string, string> { ["TPLLM_INJECT_FAULT"] = fault, ["TPLLM_COLLECTIVE_TIMEOUT"] = "5" },
            "generate", "--ids", "1,2,3", "-n", "5", "--greedy", "--tp", "4");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(who, r.Stderr);
        Assert.Contains(message, r.Stderr);
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
