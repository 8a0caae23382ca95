using System.CommandLine;

namespace TpLlm.Cli.Bench;

/// <summary><c>tpllm bench generate</c> (end-to-end tokens/s).</summary>
public static class GenerateBench
{
    /// <summary>Builds the command.</summary>
    public static Command Create() => new("generate", "end-to-end prefill and decode tokens/s on a synthetic Llama-3.2-1B-shaped model");
}
