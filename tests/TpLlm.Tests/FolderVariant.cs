using System.Text.Json.Nodes;

namespace TpLlm.Tests;

/// <summary>A model folder that links to another's files but has a config.json of its own (a field changed for a test).</summary>
internal static class FolderVariant
{
    public static string WithConfig(string folder, Action<JsonNode> change)
    {
        var dir = Paths.TempDir();
        foreach (var file in Directory.GetFiles(folder).Where(f => Path.GetFileName(f) != "config.json"))
            File.CreateSymbolicLink(Path.Combine(dir, Path.GetFileName(file)), file);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        change(json);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        return dir;
    }
}
