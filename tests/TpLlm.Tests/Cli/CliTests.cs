using System.Text.Json;
using TpLlm.Checkpoints;
using TpLlm.Tests.Models;

namespace TpLlm.Tests.Cli;

public class CliTests
{
    [Fact]
    public void Generate_prints_the_reference_greedy_continuation()
    {
        var r = CliProcess.Run("generate", "A day without", "--max-new-tokens", "20", "--greedy");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.Root, "tests", "fixtures", "fortune-llama", "reference.json")));
        var greedyText = reference.RootElement.GetProperty("prompts")[0].GetProperty("greedy_text").GetString()!;
        Assert.StartsWith(" a man to his children.\n\t\t-- Lao Tse, \"Tao Te Ch", r.Stdout);
        Assert.StartsWith(r.Stdout.TrimEnd('\n'), greedyText);
        Assert.Contains("tokens/s", r.Stderr); // progress on stderr, not stdout
    }

    [Theory]
    [InlineData("llama3-mini", 1)]
    [InlineData("llama3-mini", 3)]
    [InlineData("fortune-llama", 2)]
    [InlineData("fortune-llama", 4)]
    public void Logits_command_matches_the_reference(string model, int tp)
    {
        var (folder, refPath, _) = ModelFixtureTests.Fixture(model);
        using var reference = new SafetensorsFile(refPath);
        var ids = reference.ReadI64("prompt0.input_ids");
        var outFile = Path.Combine(Paths.TempDir(), "logits.safetensors");
        var r = CliProcess.Run("logits", "--model", folder, "--tp", tp.ToString(), "--ids", string.Join(",", ids), "--out", outFile);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var written = new SafetensorsFile(outFile);
        Assert.Equal(new long[] { ids.Length, 50257 }, written.Require("logits").Shape);
        var got = written.ReadF32("logits");
        var expected = reference.ReadF32("prompt0.logits");
        float max = 0;
        for (int i = 0; i < got.Length; i++) max = Math.Max(max, Math.Abs(got[i] - expected[i]));
        Assert.True(max <= 1e-3f, $"max abs error {max}");
    }

    [Fact]
    public void Json_greedy_tokens_are_the_reference_at_an_uneven_tp()
    {
        var r = CliProcess.Run("generate", "--model", Paths.Llama3Mini, "--ids", "464,2068,7586,21831,18045,625,262,16931,3290,13", "--greedy", "--json", "-n", "12", "--tp", "3");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var tokens = doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(new[] { 28999, 12157, 15178, 25115, 7350, 45348, 36424, 12157, 15178, 25115, 7350, 46320 }, tokens);
    }

    [Fact]
    public void Inspect_prints_each_ranks_plan_and_the_padded_vocab()
    {
        var r = CliProcess.Run("inspect", "--tp", "4", "--align", "64");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("V_pad = roundUp(50257, 4·64) = 50432", r.Stdout);
        Assert.Contains("rank 3: q heads [3, 4)", r.Stdout);
        Assert.Contains("rows [37824, 50257) + 175 padding", r.Stdout);
    }

    public static IEnumerable<object[]> BadInputs()
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), File.ReadAllText(Path.Combine(Paths.Llama3Mini, "config.json")).Replace("\"llama\"", "\"gpt_neox\""));
        yield return [new[] { "generate", "hi", "--model", dir }, "model_type 'gpt_neox' is not supported (supported: llama, mistral, qwen2)"];
        yield return [new[] { "generate", "hi", "--model", "/nonexistent/model" }, "/nonexistent/model: model folder not found"];
        var empty = Paths.TempDir();
        yield return [new[] { "generate", "hi", "--model", empty }, "config.json not found"];
        var noWeights = Paths.TempDir();
        File.Copy(Path.Combine(Paths.Llama3Mini, "config.json"), Path.Combine(noWeights, "config.json"));
        yield return [new[] { "generate", "--ids", "1", "--model", noWeights }, "neither model.safetensors.index.json nor model.safetensors found"];
        yield return [new[] { "generate", "hi", "--tp", "5" }, "--tp 5 is outside [1, 4]"];
        yield return [new[] { "generate", "--ids", "1,50257", "--greedy" }, "token id 50257 in prompt 0 is outside the vocabulary [0, 50257)"];
        yield return [new[] { "logits", "--model", Paths.Llama3Mini, "--ids", "99999", "--out", "/tmp/x.safetensors" }, "token id 99999 is outside the vocabulary"];
        yield return [new[] { "generate", "" }, "the prompt is empty"];
        yield return [new[] { "generate" }, "no prompt"];
        yield return [new[] { "generate", string.Join(" ", Enumerable.Repeat("fortune", 600)) }, "the context holds 512"];
        yield return [new[] { "generate", "hi", "--temperature", "-1" }, "--temperature -1 is outside [0, ∞)"];
        yield return [new[] { "generate", "hi", "--top-p", "1.5" }, "--top-p 1.5 is outside (0, 1]"];
        yield return [new[] { "generate", "hi", "--top-k", "-2" }, "--top-k -2 is negative"];
        yield return [new[] { "generate", "hi", "--max-new-tokens", "0" }, "--max-new-tokens 0 must be ≥ 1"];
        yield return [new[] { "generate", "hi", "--quantize", "int4" }, "--quantize 'int4' is not supported (allowed: none, int8)"];
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_gets_a_clear_message_and_a_non_zero_exit(string[] args, string message)
    {
        var r = CliProcess.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr); // a message, not a stack trace
    }
}
