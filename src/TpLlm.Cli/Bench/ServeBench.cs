using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using TpLlm.Models;
using TpLlm.Server;
using TpLlm.Serving;

namespace TpLlm.Cli.Bench;

/// <summary>
/// <c>tpllm bench serve</c>: a bounded load run on loopback. Starts the server in this process, then
/// for each concurrency level runs that many streaming clients, each sending a fixed number of
/// requests, and reports aggregate output tokens/s, time to first token and request latency.
/// </summary>
public static class ServeBench
{
    private static readonly string[] Prompts =
    [
        "A day without", "Computers are", "The meaning of life is", "Love is", "Never trust", "It is easier to",
        "The best way to", "Money can", "He who laughs", "Time flies", "A friend", "All that glitters",
        "When in doubt", "Every cloud", "Life is short", "Knowledge is",
    ];

    /// <summary>One concurrency level's figures.</summary>
    public sealed record Level(int Clients, int Requests, long OutputTokens, double Seconds, double TokensPerSecond, double RequestsPerSecond,
        double MedianTtftMs, double MedianLatencyMs, double P90LatencyMs);

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var clients = new Option<string>("--clients") { Description = "concurrency levels", DefaultValueFactory = _ => "1,4,16" };
        var requests = new Option<int>("--requests") { Description = "requests each client sends per level", DefaultValueFactory = _ => 4 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "output tokens per request (end-of-sequence ignored)", DefaultValueFactory = _ => 64 };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together", DefaultValueFactory = _ => 16 };
        var json = new Option<bool>("--json") { Description = "print results as JSON on stdout (the table goes to stderr)" };
        var cmd = new Command("serve", "load-test the OpenAI server on loopback at several concurrency levels (stops by itself)") { clients, requests, maxTokens, maxBatch, json };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            int req = r.GetValue(requests), mt = r.GetValue(maxTokens), mb = r.GetValue(maxBatch);
            if (req < 1) throw new TpLlmException($"--requests {req} must be ≥ 1");
            if (mt < 1) throw new TpLlmException($"--max-tokens {mt} must be ≥ 1");
            var levels = BenchCommand.Ints(r.GetValue(clients)!, "--clients");
            var options = new EngineOptions { ModelPath = common.ModelPath(r), Tp = r.GetValue(common.Tp), MaxBatch = mb, Model = common.ModelOptions(r, mb) };
            var results = RunAsync(options, levels, req, mt).GetAwaiter().GetResult();
            if (r.GetValue(json)) StdOut.Out.WriteLine(JsonSerializer.Serialize(new { tp = options.Tp, max_batch = mb, max_tokens = mt, levels = results }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    private static async Task<List<Level>> RunAsync(EngineOptions options, int[] levels, int requestsPerClient, int maxTokens)
    {
        var err = StdOut.Err;
        using var engine = await InferenceEngine.StartAsync(options);
        await using var app = OpenAiServer.Build(engine, "127.0.0.1", 0);
        await app.StartAsync();
        var url = app.Urls.First() + "/v1/completions";
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        err.WriteLine($"machine: {Environment.ProcessorCount} cores; model {engine.ModelId}, tp={options.Tp}, max batch {options.MaxBatch}, {maxTokens} output tokens per request, server {url}");
        await OneRequest(http, url, 0, 0, 8); // warm up
        err.WriteLine($"{"clients",7} {"requests",8} {"out tokens",10} {"seconds",8} {"tokens/s",9} {"req/s",7} {"TTFT p50 ms",11} {"latency p50 ms",14} {"p90 ms",8}");
        var results = new List<Level>();
        foreach (int c in levels)
        {
            var sw = Stopwatch.StartNew();
            var perClient = await Task.WhenAll(Enumerable.Range(0, c).Select(async client =>
            {
                var mine = new List<(double Ttft, double Latency, int Tokens)>();
                for (int i = 0; i < requestsPerClient; i++) mine.Add(await OneRequest(http, url, client, i, maxTokens));
                return mine;
            }));
            double seconds = sw.Elapsed.TotalSeconds;
            var all = perClient.SelectMany(x => x).ToList();
            long tokens = all.Sum(x => (long)x.Tokens);
            var level = new Level(c, all.Count, tokens, seconds, tokens / seconds, all.Count / seconds,
                Percentile(all.Select(x => x.Ttft), 0.5), Percentile(all.Select(x => x.Latency), 0.5), Percentile(all.Select(x => x.Latency), 0.9));
            results.Add(level);
            err.WriteLine($"{c,7} {all.Count,8} {tokens,10} {seconds,8:F2} {level.TokensPerSecond,9:F1} {level.RequestsPerSecond,7:F2} {level.MedianTtftMs,11:F1} {level.MedianLatencyMs,14:F1} {level.P90LatencyMs,8:F1}");
        }
        return results;
    }

    // one streaming completion; returns time to first token, latency and output tokens (from usage)
    private static async Task<(double, double, int)> OneRequest(HttpClient http, string url, int client, int i, int maxTokens)
    {
        var body = JsonSerializer.Serialize(new
        {
            prompt = Prompts[(client * 7 + i) % Prompts.Length], max_tokens = maxTokens, temperature = 0.8, seed = client * 1000 + i,
            ignore_eos = true, stream = true, stream_options = new { include_usage = true },
        });
        var sw = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new TpLlmException($"bench serve: the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double ttft = -1;
        int tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            using var doc = JsonDocument.Parse(line.AsMemory(6));
            var root = doc.RootElement;
            if (ttft < 0 && root.GetProperty("choices") is { ValueKind: JsonValueKind.Array } ch && ch.GetArrayLength() > 0 && ch[0].GetProperty("text").GetString() is { Length: > 0 })
                ttft = sw.Elapsed.TotalMilliseconds;
            if (root.TryGetProperty("usage", out var usage)) tokens = usage.GetProperty("completion_tokens").GetInt32();
        }
        return (ttft, sw.Elapsed.TotalMilliseconds, tokens);
    }

    private static double Percentile(IEnumerable<double> values, double q)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(q * sorted.Length))];
    }
}
