using TpLlm.Hub;

namespace TpLlm.Cli;

/// <summary>Finds the model <c>--model</c> names (a folder, a file, or a Hub id), or the bundled default (models/fortune-llama).</summary>
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

    /// <summary>
    /// <paramref name="model"/> when it is a folder or a file here; else, when it reads as a Hub id
    /// (<c>org/name[@revision]</c>), the snapshot folder in the huggingface_hub cache, downloaded if missing (progress on
    /// stderr from the root process); else <paramref name="model"/> itself, for the loader to report.
    /// </summary>
    public static string Resolve(string model)
    {
        if (!IsHubId(model)) return model;
        return new HubResolver(HubSettings.FromEnvironment(), RankLauncher.IsRoot ? StdOut.Err : null).Resolve(HubModelId.TryParse(model)!);
    }

    /// <summary>True when <paramref name="model"/> names no folder or file here and reads as a Hub id.</summary>
    public static bool IsHubId(string model) =>
        !Directory.Exists(model) && !File.Exists(model) && !model.StartsWith('.') && !Path.IsPathRooted(model) && HubModelId.TryParse(model) is not null;
}
