using System.CommandLine;
using TpLlm.Distributed;

namespace TpLlm.Cli;

/// <summary>Runs a command line, turning TpLlm errors into a message on stderr and exit code 1.</summary>
public static class CliRunner
{
    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code.</summary>
    public static int Invoke(RootCommand root, string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (Exception e) when (Unwrap(e) is TpLlmException inner)
        {
            StdOut.Err.WriteLine($"error: {Message(e, inner)}");
            return 1;
        }
    }

    private static Exception Unwrap(Exception e) => e is RankFailedException { InnerException: TpLlmException inner } ? inner : e;

    private static string Message(Exception outer, Exception inner) =>
        outer is RankFailedException r && r.InnerException is not RankFailedException && outer.Message.Contains(inner.Message)
            ? (r.FailedRank == 0 ? inner.Message : outer.Message)
            : outer.Message;
}
