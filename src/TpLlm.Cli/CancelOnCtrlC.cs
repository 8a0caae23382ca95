namespace TpLlm.Cli;

/// <summary>Turns the first Ctrl-C into a cancellation request (a second one kills the process).</summary>
public sealed class CancelOnCtrlC : IDisposable
{
    private volatile bool _requested;

    /// <summary>True after Ctrl-C.</summary>
    public bool Requested => _requested;

    /// <summary>Installs the handler.</summary>
    public CancelOnCtrlC() => Console.CancelKeyPress += OnCancel;

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        if (_requested) return;
        _requested = true;
        e.Cancel = true;
    }

    /// <inheritdoc />
    public void Dispose() => Console.CancelKeyPress -= OnCancel;
}
