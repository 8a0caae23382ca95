using TpLlm.IO;

namespace TpLlm.Cli;

/// <summary>The CLI's standard output and error: <see cref="StdStreams"/>, which never write terminal escape codes.</summary>
public static class StdOut
{
    /// <summary>Standard output.</summary>
    public static TextWriter Out => StdStreams.Out;

    /// <summary>Standard error.</summary>
    public static TextWriter Err => StdStreams.Err;
}
