namespace TpLlm.Tests;

/// <summary>Locations of the repository's vendored fixtures.</summary>
internal static class Paths
{
    public static string Root { get; } = FindRoot();

    public static string Llama3Mini => Path.Combine(Root, "tests", "fixtures", "llama3-mini");

    public static string FortuneLlama => Path.Combine(Root, "models", "fortune-llama");

    /// <summary>Random Qwen3ForCausalLM (head_dim 32 ≠ hidden/heads, q/k norms), with float64 and llama.cpp references.</summary>
    public static string Qwen3Mini => Path.Combine(Root, "tests", "fixtures", "qwen3-mini");

    /// <summary>Random Gemma3ForCausalLM (7 layers, pattern 6, window 16), with float64 and llama.cpp references.</summary>
    public static string Gemma3Mini => Path.Combine(Root, "tests", "fixtures", "gemma3-mini");

    public static string FortuneReference => Path.Combine(Root, "tests", "fixtures", "fortune-llama", "reference.safetensors");

    public static string Llama3Reference => Path.Combine(Llama3Mini, "reference.safetensors");

    /// <summary>Text fortune-llama was trained on, for perplexity (with llama.cpp's figures in its README).</summary>
    public static string EvalText => Path.Combine(Root, "tests", "fixtures", "eval", "fortunes-computers.txt");

    private static string FindRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "TpLlm.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("repository root (TpLlm.sln) not found above " + AppContext.BaseDirectory);
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "tpllm-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
