using System.Text;

namespace TpLlm.IO;

/// <summary>
/// Standard output and standard error as plain UTF-8 writers over their file descriptors.
/// <c>Console.Out</c> and <c>Console.Error</c> initialize the terminal when one is attached (mpirun
/// gives each rank a pseudo-terminal) and write keypad escape codes into stdout; these writers
/// never do, so every message of the library and the CLI goes through them.
/// </summary>
public static class StdStreams
{
    private static readonly Lazy<TextWriter> OutWriter = new(() => Open(1));
    private static readonly Lazy<TextWriter> ErrWriter = new(() => Open(2));

    private static TextWriter Open(int fd) => TextWriter.Synchronized(new StreamWriter(new FdStream(fd), new UTF8Encoding(false)) { AutoFlush = true });

    /// <summary>Standard output.</summary>
    public static TextWriter Out => OutWriter.Value;

    /// <summary>Standard error.</summary>
    public static TextWriter Err => ErrWriter.Value;
}
