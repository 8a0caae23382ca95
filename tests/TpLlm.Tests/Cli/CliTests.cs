using System.Text;
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
    public void Repetition_penalty_stops_the_reference_loop_at_an_uneven_tp()
    {
        int[] prompt = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13];
        var r = CliProcess.Run("generate", "--model", Paths.Llama3Mini, "--ids", string.Join(",", prompt), "--greedy", "--json", "-n", "12", "--tp", "3",
            "--repetition-penalty", "1000");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var tokens = doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(28999, tokens[0]); // the raw argmax is not in the prompt, so penalizing the prompt leaves it first
        Assert.Equal(12, tokens.Distinct().Count()); // the unpenalized continuation above repeats 12157 15178 25115 7350
        Assert.Empty(tokens.Intersect(prompt));
    }

    [Fact]
    public void Logit_bias_bans_and_forces_tokens()
    {
        const string ids = "464,2068,7586,21831,18045,625,262,16931,3290,13";
        int[] Tokens(string bias)
        {
            var r = CliProcess.Run("generate", "--model", Paths.Llama3Mini, "--ids", ids, "--greedy", "--json", "-n", "6", "--tp", "2", "--logit-bias", bias);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            return [.. doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32())];
        }
        Assert.DoesNotContain(28999, Tokens("28999=-100")); // the reference's first token, banned
        Assert.Equal(Enumerable.Repeat(464, 6), Tokens("464=100, 28999=-5"));
    }

    [Fact]
    public void Response_format_json_object_prints_a_json_object()
    {
        var r = CliProcess.Run("generate", "A fortune in JSON:", "--response-format", "json_object", "--tp", "2", "--seed", "4", "-t", "1", "-n", "48");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var text = System.Text.Encoding.UTF8.GetBytes(r.Stdout.TrimEnd('\n'));
        if (r.Stderr.Contains("stopped: end-of-sequence token")) Assert.True(Sampling.Json.JsonStateTests.Oracle(text), r.Stdout);
        else Assert.True(new TpLlm.Sampling.Json.JsonState().Feed(text), r.Stdout);
        Assert.StartsWith("{", r.Stdout.TrimStart());
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
        yield return [new[] { "generate", "hi", "--model", dir }, "model_type 'gpt_neox' is not supported (supported: llama, mistral, qwen2, qwen3, gemma3_text)"];
        yield return [new[] { "generate", "hi", "--model", "/nonexistent/model" }, "/nonexistent/model: model folder not found"];
        var empty = Paths.TempDir();
        yield return [new[] { "generate", "hi", "--model", empty }, "config.json not found"];
        var noWeights = Paths.TempDir();
        File.Copy(Path.Combine(Paths.Llama3Mini, "config.json"), Path.Combine(noWeights, "config.json"));
        yield return [new[] { "generate", "--ids", "1", "--model", noWeights }, "neither model.safetensors.index.json nor model.safetensors found"];
        yield return [new[] { "generate", "hi", "--tp", "5" }, "--tp 5 is outside [1, 4]"];
        yield return [new[] { "generate", "--ids", "1,50257", "--greedy" }, "token id 50257 in prompt is outside the vocabulary [0, 50257)"];
        yield return [new[] { "logits", "--model", Paths.Llama3Mini, "--ids", "99999", "--out", "/tmp/x.safetensors" }, "token id 99999 is outside the vocabulary"];
        yield return [new[] { "generate", "" }, "the prompt is empty"];
        yield return [new[] { "generate" }, "no prompt"];
        yield return [new[] { "generate", string.Join(" ", Enumerable.Repeat("fortune", 600)) }, "This model's maximum context length is 512 tokens"];
        yield return [new[] { "generate", "hi", "--temperature", "-1" }, "--temperature -1 is outside [0, ∞)"];
        yield return [new[] { "generate", "hi", "--top-p", "1.5" }, "--top-p 1.5 is outside (0, 1]"];
        yield return [new[] { "generate", "hi", "--top-k", "-2" }, "--top-k -2 is negative"];
        yield return [new[] { "generate", "hi", "--presence-penalty", "3" }, "--presence-penalty 3 is outside [-2, 2]"];
        yield return [new[] { "generate", "hi", "--repetition-penalty", "0" }, "--repetition-penalty 0 is outside (0, ∞)"];
        yield return [new[] { "generate", "hi", "--logit-bias", "5:3" }, "--logit-bias: '5:3' is not id=bias"];
        yield return [new[] { "generate", "hi", "--logit-bias", "5=300" }, "--logit-bias 300 for token 5 is outside [-100, 100]"];
        yield return [new[] { "generate", "hi", "--logit-bias", "99999=1" }, "--logit-bias token id 99999 is outside the vocabulary [0, 50257)"];
        yield return [new[] { "generate", "hi", "--max-new-tokens", "0" }, "--max-new-tokens 0 must be ≥ 1"];
        yield return [new[] { "generate", "hi", "--response-format", "yaml" }, "Argument 'yaml' not recognized"];
        yield return [new[] { "generate", "--ids", "1,2", "--model", Paths.Llama3Mini, "--response-format", "json_object" }, "--response-format json_object needs the model's tokenizer.json"];
        yield return [new[] { "generate", "hi", "--quantize", "int4" }, "--quantize 'int4' is not supported (allowed: none, int8, q4)"];
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

public class CliFaultTests
{
    [Fact]
    public void A_config_that_disagrees_with_the_weights_names_tensor_and_shapes()
    {
        var dir = Paths.TempDir();
        foreach (var f in Directory.GetFiles(Paths.Llama3Mini)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"intermediate_size\": 160", "\"intermediate_size\": 192"));
        var r = CliProcess.Run("generate", "--model", dir, "--ids", "1,2");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [160, 64], the config implies [192, 64]", r.Stderr);
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"intermediate_size\": 192", "\"intermediate_size\": 160").Replace("\"vocab_size\": 50257", "\"vocab_size\": 50304"));
        var v = CliProcess.Run("generate", "--model", dir, "--ids", "1,2", "--tp", "2");
        Assert.Equal(1, v.ExitCode);
        Assert.Contains("tensor 'model.embed_tokens.weight' has shape [50257, 64], the config implies [50304, 64]", v.Stderr);
    }

    [Fact]
    public async Task Ctrl_c_stops_all_ranks_and_prints_what_was_generated()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "tpllm.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Paths.Root };
        // the bundled model fills its 512-token context in ~1.5 s, which a loaded machine can take to deliver the
        // signal: a copy whose context is 32× longer keeps generating until Ctrl-C lands (the first tokens are the same)
        string model = LongContextCopy(Paths.FortuneLlama, 16384);
        foreach (var a in new[] { dll, "generate", "A day without", "-m", model, "-n", "100000", "--greedy", "--ignore-eos", "--tp", "2", "--threads", "1" }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var text = new StringBuilder();
        var buffer = new char[256];
        while (text.Length < 20) // wait for streamed text, then interrupt
        {
            int n = p.StandardOutput.Read(buffer, 0, buffer.Length);
            if (n <= 0) Assert.Fail($"no output before the end of the stream; stdout: '{text}', stderr: {await stderr}");
            text.Append(buffer, 0, n);
        }
        if (Kill(p.Id, 2 /* SIGINT */) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            p.WaitForExit(10_000);
            Assert.Fail($"kill failed (errno {errno}; exit code {p.ExitCode}); stdout: '{text}'; stderr: {await stderr}");
        }
        text.Append(await p.StandardOutput.ReadToEndAsync());
        Assert.True(p.WaitForExit(10_000), "did not stop within 10 s of Ctrl-C");
        string err = await stderr;
        // the messages carry both streams, so a failure under load says what the process did
        Assert.True(p.ExitCode == 0, $"exit code {p.ExitCode}; stdout: '{text}'; stderr: {err}");
        Assert.True(err.Contains("stopped: cancelled (Ctrl-C)"), $"no cancellation line; stdout: '{text}'; stderr: {err}");
        // what was printed is the greedy continuation up to where Ctrl-C landed (then a newline)
        const string greedy = " a man to his children.\n\t\t-- Lao Tse, \"Tao Te Ching\"\n";
        string got = text.ToString().TrimEnd('\n');
        Assert.True(got.Length >= 20 && (greedy.StartsWith(got, StringComparison.Ordinal) || got.StartsWith(greedy, StringComparison.Ordinal)),
            $"printed '{got}', not the greedy continuation '{greedy}'");
    }

    // links to every file of the model folder but config.json, which gets max_position_embeddings = contextLength
    internal static string LongContextCopy(string folder, int contextLength)
    {
        string dir = Paths.TempDir();
        foreach (var file in Directory.GetFiles(folder))
        {
            string target = Path.Combine(dir, Path.GetFileName(file));
            if (Path.GetFileName(file) == "config.json")
            {
                var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!;
                config["max_position_embeddings"] = contextLength;
                File.WriteAllText(target, config.ToJsonString());
            }
            else File.CreateSymbolicLink(target, file);
        }
        return dir;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static extern int Kill(int pid, int signal);
}

public class CliOutputTests
{
    [Fact]
    public void Stdout_and_stderr_redirected_to_one_file_keep_every_line()
    {
        var file = Path.Combine(Paths.TempDir(), "out.txt");
        var dll = Path.Combine(AppContext.BaseDirectory, "tpllm.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("bash") { WorkingDirectory = Paths.Root };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"dotnet '{dll}' generate --ids 32,1110,1231 -n 5 --greedy --json > '{file}' 2>&1");
        using var p = System.Diagnostics.Process.Start(psi)!;
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(0, p.ExitCode);
        var lines = File.ReadAllLines(file);
        Assert.Contains("{\"tokens\":[257,582,284,465,1751],\"finish_reason\":\"MaxTokens\"}", lines);
        Assert.Contains(lines, l => l.StartsWith("tpllm: loaded", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("tpllm: 5 tokens; prefill 3 tokens in ", StringComparison.Ordinal));
        Assert.DoesNotContain('\u001b', File.ReadAllText(file)); // no terminal escape codes
    }
}

/// <summary>What a new user and a hostile input hit: every failure is one line and exit 1, nothing a stack trace.</summary>
public class CliHardeningTests
{
    [Fact]
    public void Ids_on_a_folder_without_a_tokenizer_print_the_new_ids()
    {
        var dir = Paths.TempDir();
        foreach (var f in Directory.GetFiles(Paths.FortuneLlama).Where(f => !f.EndsWith("tokenizer.json", StringComparison.Ordinal)))
            File.CreateSymbolicLink(Path.Combine(dir, Path.GetFileName(f)), f);
        // used to crash with IndexOutOfRangeException (exit 134) after generating
        var r = CliProcess.Run("generate", "--model", dir, "--ids", "32,1110,1231", "-n", "5", "--greedy");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = CliProcess.Run("generate", "--model", dir, "--ids", "32,1110,1231", "-n", "5", "--greedy", "--json");
        var tokens = JsonDocument.Parse(json.Stdout).RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32());
        Assert.Equal(string.Join(",", tokens), r.Stdout.Trim());
        Assert.Contains("no tokenizer.json", r.Stderr);
    }

    [Fact]
    public void Generate_reports_prefill_and_decode_separately()
    {
        var r = CliProcess.Run("generate", "--ids", "32,1110,1231", "-n", "8", "--greedy", "--ignore-eos", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Matches(@"prefill 3 tokens in \d+\.\d\d s \(\d+\.\d tokens/s\); decode 7 tokens in \d+\.\d\d s \(\d+\.\d tokens/s\)", r.Stderr);
    }

    [Fact]
    public void Special_tokens_are_no_text_under_ignore_eos()
    {
        // the greedy continuation of "A day without" passes <|endoftext|> (transformers' reference)
        var r = CliProcess.Run("generate", "A day without", "-n", "30", "--greedy", "--ignore-eos");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("Tao Te Ching", r.Stdout);
        Assert.DoesNotContain("<|endoftext|>", r.Stdout);
    }

    [Fact]
    public void A_bad_host_and_a_taken_port_are_one_line_errors_before_loading()
    {
        var host = CliProcess.Run("serve", "--host", "999.1.1.1", "--port", "0");
        Assert.Equal(1, host.ExitCode);
        Assert.Contains("--host '999.1.1.1' is not an IP address", host.Stderr);
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
            var r = CliProcess.Run("serve", "--host", "127.0.0.1", "--port", port.ToString());
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"--port {port}: cannot listen there", r.Stderr);
            Assert.DoesNotContain("loaded", r.Stderr); // refused before the model was loaded
            Assert.DoesNotContain("   at ", r.Stderr); // no stack trace
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }
        finally
        {
            taken.Stop();
        }
    }

    [Fact]
    public void An_unexpected_exception_is_one_line_and_exit_1()
    {
        var root = new System.CommandLine.RootCommand();
        var boom = new System.CommandLine.Command("boom");
        boom.SetAction(new Func<System.CommandLine.ParseResult, int>(_ => throw new InvalidOperationException("the sky fell")));
        root.Subcommands.Add(boom);
        Assert.Equal(1, TpLlm.Cli.CliRunner.Invoke(root, ["boom"]));
        Assert.Equal("unexpected InvalidOperationException: the sky fell (TPLLM_DEBUG=1 shows where)", TpLlm.Cli.CliRunner.Describe(new InvalidOperationException("the sky fell")));
        // a request error names the CLI's option, not the API's field
        Assert.Equal("--max-new-tokens 0 must be ≥ 1 (0 only when scoring the prompt)",
            TpLlm.Cli.CliRunner.Describe(Assert.Throws<InvalidRequestException>(() => new TpLlm.Models.GenerationRequest { PromptIds = [1], MaxNewTokens = 0 }.Validate(512, 100))));
    }

    [Fact]
    public void Bench_lm_head_writes_a_chart_only_where_asked()
    {
        var dir = Paths.TempDir();
        var r = CliProcess.RunIn(dir, "bench", "lm-head", "--shapes", "64x100", "--t", "1", "--tp", "1", "--runs", "5");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Empty(Directory.GetFiles(dir)); // used to write bench-lm-head.png into the current directory
        var chart = Path.Combine(dir, "c.png");
        r = CliProcess.RunIn(dir, "bench", "lm-head", "--shapes", "64x100", "--t", "1", "--tp", "1", "--runs", "5", "--chart", chart);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([chart], Directory.GetFiles(dir));
    }
}
