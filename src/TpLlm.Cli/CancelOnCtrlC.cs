using System.Runtime.InteropServices;

namespace TpLlm.Cli;

/// <summary>
/// Turns the first Ctrl-C (SIGINT), SIGTERM or SIGUSR1 into a cancellation request; a second
/// SIGINT or SIGTERM ends the process. SIGTERM counts because that is what <c>mpirun</c> sends
/// every rank when it gets Ctrl-C (its ranks sit in process groups of their own, so the terminal's
/// SIGINT reaches only mpirun), and SIGUSR1 because mpirun forwards it to every rank unchanged.
/// Uses POSIX signal registrations rather than Console.CancelKeyPress, which initializes the
/// terminal and writes escape codes to stdout (seen under mpirun).
/// </summary>
public sealed class CancelOnCtrlC : IDisposable
{
    private const int SigUsr1 = 10; // Linux; not in PosixSignal, which takes raw numbers
    private readonly PosixSignalRegistration[] _registrations;
    private volatile bool _requested;

    /// <summary>True after Ctrl-C (or SIGTERM, SIGUSR1).</summary>
    public bool Requested => _requested;

    /// <summary>Installs the handlers.</summary>
    public CancelOnCtrlC() =>
        _registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, (PosixSignal)SigUsr1 }.Select(s => PosixSignalRegistration.Create(s, OnSignal))];

    private void OnSignal(PosixSignalContext context)
    {
        if (_requested && context.Signal != (PosixSignal)SigUsr1) return; // a second one: default handling ends the process
        _requested = true;
        context.Cancel = true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}
