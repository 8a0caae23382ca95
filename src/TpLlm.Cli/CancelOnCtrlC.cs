using System.Runtime.InteropServices;

namespace TpLlm.Cli;

/// <summary>
/// Turns the first Ctrl-C (SIGINT) into a cancellation request; a second one ends the process.
/// Uses a POSIX signal registration rather than Console.CancelKeyPress, which initializes the
/// terminal and writes escape codes to stdout (seen under mpirun).
/// </summary>
public sealed class CancelOnCtrlC : IDisposable
{
    private readonly PosixSignalRegistration _registration;
    private volatile bool _requested;

    /// <summary>True after Ctrl-C.</summary>
    public bool Requested => _requested;

    /// <summary>Installs the handler.</summary>
    public CancelOnCtrlC() => _registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

    private void OnSignal(PosixSignalContext context)
    {
        if (_requested) return; // second Ctrl-C: default handling ends the process
        _requested = true;
        context.Cancel = true;
    }

    /// <inheritdoc />
    public void Dispose() => _registration.Dispose();
}
