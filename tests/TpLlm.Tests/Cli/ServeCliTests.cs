using System.Net;
using System.Text;
using System.Text.Json;

namespace TpLlm.Tests.Cli;

/// <summary><c>tpllm serve</c> from the command line: over threads, and over MPI with rank 0 serving and rank 1 following.</summary>
public class ServeCliTests
{
    private static async Task<string> Complete(string url, string extra = "")
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var r = await http.PostAsync(url + "/v1/completions",
            new StringContent($$"""{"prompt": "A day without", "max_tokens": 18, "temperature": 0{{extra}}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }

    private const string Reference = " a man to his children.\n\t\t-- Lao Tse, \"Tao"; // transformers' greedy continuation, 18 tokens

    [Fact]
    public async Task Serve_over_threads_answers_and_stops_on_ctrl_c()
    {
        using var server = new ServeProcess(0, "--port", "0", "--host", "127.0.0.1", "--tp", "2", "--threads", "1", "--no-prefix-caching");
        Assert.Equal(Reference, await Complete(server.Url));
        Assert.Equal(Reference, await Complete(server.Url));
        using (var http = new HttpClient())
        {
            var metrics = await http.GetStringAsync(server.Url + "/metrics");
            Assert.Matches(@"tpllm_prefix_cache_hits_total\{[^}]*\} 0\n", metrics); // the same prompt twice, and no cache
        }
        Assert.Equal(0, server.Interrupt());
        Assert.Contains("server stopped", server.Stderr);
    }

    [Fact]
    public async Task Serve_over_mpi_rank_0_serves_and_rank_1_follows()
    {
        using var server = new ServeProcess(2, "--port", "0", "--host", "127.0.0.1", "--tp", "2", "--threads", "1", "--max-prefill-tokens", "2");
        Assert.Contains("tp=2", server.Stderr);
        Assert.Equal(Reference, await Complete(server.Url));
        // JSON mode: every process masks its own vocabulary slice and parses each picked token
        Assert.Equal(JsonModeInProcess(), await Complete(server.Url, ", \"response_format\": {\"type\": \"json_object\"}"));
        Assert.Equal(Reference, await Complete(server.Url));
        server.Interrupt();
    }

    private static string JsonModeInProcess()
    {
        using var folder = TpLlm.Models.ModelFolder.Open(Paths.FortuneLlama);
        var tok = folder.Tokenizer!;
        var result = TpLlm.Distributed.ThreadRanks.Run(2, comm =>
        {
            using var m = TpLlm.Models.DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new TpLlm.Models.ModelOptions { ComputeThreads = 1 });
            return new TpLlm.Models.Generator(m, folder.SamplableVocab, folder.Config.EosTokenIds) { TokenBytes = tok.TextTokenBytes }.Generate(
                [new TpLlm.Models.GenerationRequest { PromptIds = tok.Encode("A day without", addSpecialTokens: true), MaxNewTokens = 18, ResponseFormat = TpLlm.Sampling.ResponseFormat.JsonObject }])[0];
        })[0];
        var text = tok.Decode(result.Tokens.Where(t => !folder.Config.EosTokenIds.Contains(t)));
        Assert.StartsWith("{", text.TrimStart());
        return text;
    }

    [Fact]
    public void Serve_rejects_bad_options_with_a_clear_message()
    {
        var r = CliProcess.Run("serve", "--max-batch", "0");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--max-batch 0 must be ≥ 1", r.Stderr);
        r = CliProcess.Run("serve", "--max-prefill-tokens", "-5");
        Assert.Contains("--max-prefill-tokens -5 must be ≥ 0 (0 = whole prompts)", r.Stderr);
        r = CliProcess.Run("serve", "--head", "RowParallel");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--head RowParallel: the batch samples each rank's vocabulary slice", r.Stderr);
        r = CliProcess.Run("serve", "--port", "70000");
        Assert.Contains("--port 70000 is outside [0, 65535]", r.Stderr);
        r = CliProcess.Run("serve", "--chat-template", "/nonexistent.jinja", "--port", "0");
        Assert.Contains("--chat-template /nonexistent.jinja: file not found", r.Stderr);
    }
}
