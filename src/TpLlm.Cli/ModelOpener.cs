using TpLlm.Models;

namespace TpLlm.Cli;

/// <summary>Opens the model a command names and tells the user, once per job, what was done to read it.</summary>
public static class ModelOpener
{
    /// <summary><see cref="ModelFolder.Open"/>, then each of its <see cref="ModelFolder.Notes"/> on stderr (on the root process only).</summary>
    public static ModelFolder Open(string path, bool requireTokenizer = false)
    {
        var folder = ModelFolder.Open(path, requireTokenizer);
        if (RankLauncher.IsRoot)
            foreach (var note in folder.Notes) StdOut.Err.WriteLine($"tpllm: {note}");
        return folder;
    }
}
