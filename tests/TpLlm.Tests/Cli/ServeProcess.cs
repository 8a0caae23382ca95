using System.Diagnostics;
using System.Text.RegularExpressions;

namespace TpLlm.Tests.Cli;

/// <summary><c>tpllm serve</c> as a real process (optionally under mpirun); knows its URL once it says it is serving.</summary>
internal sealed partial class ServeProcess : IDisposable
{
    private readonly Process _p;
    private readonly List<string> _stderr = [];

    public string Url { get; }

    public string Stderr { get { lock (_stderr) return string.Join('\n', _stderr); } }

    public ServeProcess(int mpiRanks, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "tpllm.dll");
        var psi = new ProcessStartInfo(mpiRanks > 0 ? "mpirun" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Paths.Root };
        if (mpiRanks > 0) foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", mpiRanks.ToString(), "dotnet" }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("serve");
        foreach (var a in args) psi.ArgumentList.Add(a);
        _p = Process.Start(psi)!;
        var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { url.TrySetException(new InvalidOperationException("tpllm serve ended before serving:\n" + Stderr)); return; }
            lock (_stderr) _stderr.Add(e.Data);
            if (UrlPattern().Match(e.Data) is { Success: true } m) url.TrySetResult(m.Groups[1].Value);
        };
        _p.BeginErrorReadLine();
        _p.StandardOutput.ReadToEndAsync();
        if (!url.Task.Wait(TimeSpan.FromSeconds(90))) { Dispose(); throw new TimeoutException("tpllm serve did not start in 90 s:\n" + Stderr); }
        Url = url.Task.Result;
    }

    /// <summary>Sends SIGINT (Ctrl-C) and waits for the exit code.</summary>
    public int Interrupt()
    {
        using (var kill = Process.Start("kill", ["-INT", _p.Id.ToString()])) kill.WaitForExit();
        if (!_p.WaitForExit(30_000)) { _p.Kill(true); throw new TimeoutException("tpllm serve did not stop within 30 s of SIGINT:\n" + Stderr); }
        _p.WaitForExit();
        return _p.ExitCode;
    }

    public void Dispose()
    {
        if (!_p.HasExited) _p.Kill(true);
        _p.Dispose();
    }

    [GeneratedRegex(@"serving .* on (http://\S+)")]
    private static partial Regex UrlPattern();
}
