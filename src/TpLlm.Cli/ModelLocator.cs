namespace TpLlm.Cli;

/// <summary>Finds the bundled default model (models/fortune-llama).</summary>
public static class ModelLocator
{
    /// <summary>
    /// TPLLM_MODEL, else models/fortune-llama in or above the current directory, else beside the program or above it
    /// (an installed tool carries it in its own folder; a build finds the repository's).
    /// </summary>
    public static string DefaultModel()
    {
        var env = Environment.GetEnvironmentVariable("TPLLM_MODEL");
        if (!string.IsNullOrEmpty(env)) return env;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = start; dir is not null; dir = Path.GetDirectoryName(dir))
            {
                var candidate = Path.Combine(dir, "models", "fortune-llama");
                if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
            }
        }
        throw new TpLlmException($"no --model given and the bundled models/fortune-llama was found neither above the current directory nor beside the program ({AppContext.BaseDirectory}); pass --model DIR or set TPLLM_MODEL");
    }
}
