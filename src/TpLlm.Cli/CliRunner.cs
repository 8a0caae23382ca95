using System.CommandLine;
using TpLlm.Distributed;

namespace TpLlm.Cli;

/// <summary>
/// Runs a command line. Every failure reaches the user as one line on stderr and exit code 1: TpLlm's own
/// errors as their message (a request field named as the CLI option that sets it), anything unexpected as its
/// type and message. <c>TPLLM_DEBUG=1</c> adds the stack trace.
/// </summary>
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
        catch (Exception e)
        {
            StdOut.Err.WriteLine($"error: {Describe(e)}");
            if (Environment.GetEnvironmentVariable("TPLLM_DEBUG") == "1") StdOut.Err.WriteLine(e.ToString());
            return 1;
        }
    }

    /// <summary>The one-line message of <paramref name="e"/>.</summary>
    public static string Describe(Exception e)
    {
        var inner = Unwrap(e);
        if (inner is not TpLlmException) return $"unexpected {inner.GetType().Name}: {inner.Message} (TPLLM_DEBUG=1 shows where)";
        return Message(e, inner);
    }

    /// <summary>The CLI's name for a request field: its option (<c>--top-p</c>), or "prompt".</summary>
    public static string OptionName(string field) => field switch
    {
        "prompt" => "prompt",
        "max_tokens" => "--max-new-tokens",
        "top_logprobs" => "--logprobs",
        "stop_token_ids" => "stop token ids",
        _ => "--" + field.Replace('_', '-'),
    };

    private static Exception Unwrap(Exception e) => e is RankFailedException { InnerException: TpLlmException inner } ? inner : e;

    private static string Text(Exception e) => e is InvalidRequestException r ? r.MessageNaming(OptionName) : e.Message;

    private static string Message(Exception outer, Exception inner) =>
        outer is RankFailedException r && r.InnerException is not RankFailedException && outer.Message.Contains(inner.Message)
            ? (r.FailedRank == 0 ? Text(inner) : outer.Message.Replace(inner.Message, Text(inner)))
            : Text(outer);
}
