using System.Text;

namespace TpLlm.Cli;

/// <summary>
/// Standard output as a plain stream writer. Console.Out initializes the terminal when stdout
/// looks like one (mpirun gives ranks a pty) and writes keypad escape codes into the output;
/// writing through the raw stream keeps stdout exactly the program's text.
/// </summary>
public static class StdOut
{
    private static readonly Lazy<TextWriter> Writer = new(() =>
        TextWriter.Synchronized(new StreamWriter(Raw(1), new UTF8Encoding(false)) { AutoFlush = true }));

    private static readonly Lazy<TextWriter> ErrWriter = new(() =>
        TextWriter.Synchronized(new StreamWriter(Raw(2), new UTF8Encoding(false)) { AutoFlush = true }));

    // the file descriptor itself: Console's streams initialize the terminal too, and a FileStream
    // would write at its own offset (overwriting stderr's lines in a shared `> out 2>&1` file)
    private static Stream Raw(int fd) => new FdStream(fd);

    /// <summary>The writer.</summary>
    public static TextWriter Out => Writer.Value;

    /// <summary>Standard error, written the same way (StdOut.Err initializes the terminal too).</summary>
    public static TextWriter Err => ErrWriter.Value;
}
