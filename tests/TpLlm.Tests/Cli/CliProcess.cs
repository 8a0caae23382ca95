using System.Diagnostics;

namespace TpLlm.Tests.Cli;

/// <summary>Runs the built tpllm CLI as a real process.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => Start([], null, args);

    /// <summary>The new tokens of a successful <c>generate --json</c> run.</summary>
    public static int[] Tokens(Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        return [.. doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
    }

    /// <summary>Runs tpllm with <paramref name="workingDirectory"/> as the current directory.</summary>
    public static Result RunIn(string workingDirectory, params string[] args) => Start([], null, args, workingDirectory);

    /// <summary>Runs tpllm on <paramref name="np"/> MPI processes (as root: --allow-run-as-root; more ranks than cores: --oversubscribe).</summary>
    public static Result Mpi(int np, IDictionary<string, string>? env, params string[] args) =>
        Start(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", np.ToString()], env, args);

    /// <summary>Runs tpllm with extra environment variables.</summary>
    public static Result Start(IDictionary<string, string> env, params string[] args) => Start([], env, args);

    private static Result Start(string[] launcher, IDictionary<string, string>? env, string[] args, string? workingDirectory = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "tpllm.dll");
        var psi = new ProcessStartInfo(launcher.Length > 0 ? launcher[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? Paths.Root };
        foreach (var a in launcher.Skip(1)) psi.ArgumentList.Add(a);
        if (launcher.Length > 0) psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // a Hub id never reaches the network from a test unless the test starts its own fake Hub
        psi.Environment["HF_HUB_OFFLINE"] = "1";
        psi.Environment["HF_HOME"] = Path.Combine(Path.GetTempPath(), "tpllm-tests", "hf-home");
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return RunToEnd(psi, TimeSpan.FromSeconds(120));
    }

    /// <summary>Runs <paramref name="psi"/> (output redirected) to its end, reading both streams; killed and a <see cref="TimeoutException"/> past <paramref name="limit"/>.</summary>
    public static Result RunToEnd(ProcessStartInfo psi, TimeSpan limit)
    {
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(true);
            throw new TimeoutException($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not finish in {limit.TotalSeconds:0} s");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
