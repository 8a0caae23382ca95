using System.Text.Json;
using TpLlm.Tests.Checkpoints;

namespace TpLlm.Tests.Cli;

/// <summary><c>--model file.gguf</c> in the commands, on thread ranks and under mpirun.</summary>
public class GgufCliTests
{
    private static int[] Tokens(CliProcess.Result r) => CliProcess.Tokens(r);

    [Fact]
    public void Generate_from_a_gguf_file_prints_the_reference_continuation_with_its_own_tokenizer()
    {
        var gguf = GgufTests.Gguf("fortune-llama", GgufConverter.BF16);
        var r = CliProcess.Run("generate", "A day without", "--model", gguf, "--max-new-tokens", "20", "--greedy", "--tp", "2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(Paths.Root, "tests", "fixtures", "fortune-llama", "reference.json")));
        var greedyText = reference.RootElement.GetProperty("prompts")[0].GetProperty("greedy_text").GetString()!;
        Assert.StartsWith(" a man to his children.", r.Stdout);
        Assert.StartsWith(r.Stdout.TrimEnd('\n'), greedyText);
    }

    [Fact]
    public void A_quantized_head_is_reported_on_stderr_once_and_mpi_ranks_equal_thread_ranks()
    {
        var gguf = GgufTests.Gguf("fortune-llama", GgufConverter.Q4_0);
        string[] args = ["generate", "--model", gguf, "--ids", "464,3616,286,1204,318", "--greedy", "--json", "-n", "12", "--tp", "2"];
        var local = CliProcess.Run(args);
        var mpi = CliProcess.Mpi(2, null, args);
        Assert.Equal(Tokens(local), Tokens(mpi));
        foreach (var r in new[] { local, mpi })
        {
            var notes = r.Stderr.Split('\n').Where(l => l.Contains("token_embd.weight is Q4_0: widened to bf16")).ToArray();
            Assert.Single(notes);
        }
    }

    [Fact]
    public void Perplexity_and_inspect_read_gguf_files()
    {
        var gguf = GgufTests.Gguf("fortune-llama", GgufConverter.Q8_0, GgufConverter.BF16);
        var p = CliProcess.Run("perplexity", "--model", gguf, "--text", Paths.EvalText, "--context", "128", "--json");
        Assert.True(p.ExitCode == 0, p.Stderr);
        using var doc = JsonDocument.Parse(p.Stdout);
        double ppl = doc.RootElement.GetProperty("perplexity").GetDouble();
        Assert.InRange(ppl, 1.5, 30); // an int8 fortune-llama on its own training text (bf16: about 9 at this context)
        var i = CliProcess.Run("inspect", "--model", gguf, "--tp", "3");
        Assert.True(i.ExitCode == 0, i.Stderr);
        Assert.Contains("model " + gguf + ": llama", i.Stdout);
    }

    [Fact]
    public void A_file_that_is_neither_a_folder_nor_gguf_is_one_clear_error()
    {
        var path = Path.Combine(Paths.TempDir(), "model.bin");
        File.WriteAllBytes(path, new byte[100]);
        var r = CliProcess.Run("generate", "hi", "--model", path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {path}: not a model folder or a GGUF file (it does not start with the GGUF magic)", r.Stderr.Trim());
    }

    [Fact]
    public async Task Serve_answers_as_the_file_with_its_metadata_chat_template()
    {
        const string template = "{% for m in messages %}{{ m['content'] }}{% endfor %}";
        var path = GgufConverter.Convert(Paths.FortuneLlama, Path.Combine(Paths.TempDir(), "fortune.Q8_0.gguf"), GgufConverter.Q8_0, GgufConverter.BF16,
            w => w.String("tokenizer.chat_template", template));
        using var server = new ServeProcess(0, "--model", path, "--port", "0", "--host", "127.0.0.1", "--tp", "2", "--threads", "1");
        Assert.Contains($"chat template: {path} (tokenizer.chat_template)", server.Stderr);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var models = JsonDocument.Parse(await http.GetStringAsync(server.Url + "/v1/models"));
        Assert.Equal("fortune.Q8_0.gguf", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        using var r = await http.PostAsync(server.Url + "/v1/chat/completions", new StringContent(
            """{"messages": [{"role": "user", "content": "A day without"}], "max_tokens": 8, "temperature": 0}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.OK, r.StatusCode);
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        Assert.Equal(3, doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // the template added nothing to "A day without"
        server.Interrupt();
    }
}
