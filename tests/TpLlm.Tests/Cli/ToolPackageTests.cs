using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;

namespace TpLlm.Tests.Cli;

/// <summary>
/// The packages as users get them: <c>dotnet pack</c> of the built projects, the tool installed from that folder into a
/// temporary tool path (no other package source), and <c>tpllm</c> run from a directory outside the repository.
/// </summary>
public class ToolPackageTests
{
    [Fact]
    public void The_installed_tool_generates_with_its_bundled_model_from_an_unrelated_directory()
    {
        var (packages, config) = Packed.Value;
        var root = Paths.TempDir();
        var tools = Path.Combine(root, "tools");
        var install = Dotnet(root, "tool", "install", "TpLlm.Cli", "--tool-path", tools, "--configfile", config, "--version", Version());
        Assert.True(install.ExitCode == 0, install.Output);

        var elsewhere = Path.Combine(root, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        var psi = new ProcessStartInfo(Path.Combine(tools, "tpllm")) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = elsewhere };
        foreach (var a in new[] { "generate", "A day without", "--greedy", "--max-new-tokens", "20" }) psi.ArgumentList.Add(a);
        psi.Environment.Remove("TPLLM_MODEL");
        var run = RunProcess(psi);
        Assert.True(run.ExitCode == 0, run.Output);

        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.Root, "tests", "fixtures", "fortune-llama", "reference.json")));
        var greedyText = reference.RootElement.GetProperty("prompts")[0].GetProperty("greedy_text").GetString()!;
        Assert.StartsWith(" a man to his children.", run.Stdout);
        Assert.StartsWith(run.Stdout.TrimEnd('\n'), greedyText);
        Assert.Contains(Path.Combine(tools, ".store"), run.Output); // the model came from beside the installed program
    }

    [Fact]
    public void Library_and_server_packages_carry_readme_license_docs_and_symbols()
    {
        var (packages, _) = Packed.Value;
        foreach (var (id, dll) in new[] { ("TpLlm", "lib/net10.0/TpLlm.Core.dll"), ("TpLlm.Server", "lib/net10.0/TpLlm.Server.dll") })
        {
            var nupkg = Path.Combine(packages, $"{id}.{Version()}.nupkg");
            Assert.True(File.Exists(Path.Combine(packages, $"{id}.{Version()}.snupkg")), $"no symbols package for {id}");
            using var zip = ZipFile.OpenRead(nupkg);
            var names = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("README.md", names);
            Assert.Contains("LICENSE", names);
            Assert.Contains(dll, names);
            Assert.Contains(Path.ChangeExtension(dll, ".xml"), names);
            using var nuspec = new StreamReader(zip.GetEntry($"{id}.nuspec")!.Open());
            var text = nuspec.ReadToEnd();
            Assert.Contains("<license type=\"expression\">MIT</license>", text);
            Assert.Contains("<readme>README.md</readme>", text);
        }
    }

    /// <summary>The solution's packable projects packed once from the existing build (no rebuild under the running tests).</summary>
    private static readonly Lazy<(string Packages, string Config)> Packed = new(PackAll);

    private static (string, string) PackAll()
    {
        var root = Paths.TempDir();
        var packages = Path.Combine(root, "packages");
        var pack = Dotnet(Paths.Root, "pack", Path.Combine(Paths.Root, "TpLlm.sln"), "-c", Configuration(), "--no-build", "--no-restore", "-o", packages, "-nodeReuse:false", "-p:UseSharedCompilation=false");
        Assert.True(pack.ExitCode == 0, pack.Output);
        var config = Path.Combine(root, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration><packageSources><clear /><add key="local" value="{packages}" /></packageSources></configuration>
            """);
        return (packages, config);
    }

    /// <summary>The configuration these tests were built in (bin/&lt;Configuration&gt;/net10.0).</summary>
    private static string Configuration() => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    private static string Version() =>
        typeof(TpLlm.Cli.ModelLocator).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : throw new InvalidOperationException("no version");

    private sealed record Outcome(int ExitCode, string Stdout, string Output);

    private static Outcome Dotnet(string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        return RunProcess(psi);
    }

    private static Outcome RunProcess(ProcessStartInfo psi)
    {
        var r = CliProcess.RunToEnd(psi, TimeSpan.FromSeconds(300));
        return new Outcome(r.ExitCode, r.Stdout, $"{psi.FileName} {string.Join(' ', psi.ArgumentList)} exited {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
    }
}
