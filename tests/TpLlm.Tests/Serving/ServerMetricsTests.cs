using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TpLlm.Tests.Serving;

/// <summary><c>/metrics</c> counts what the server did; <c>/tokenize</c> and <c>/detokenize</c> agree with the engine.</summary>
public class ServerMetricsTests
{
    private static double Value(string metrics, string series)
    {
        var m = Regex.Match(metrics, "^" + Regex.Escape(series) + " ([^ \n]+)", RegexOptions.Multiline);
        Assert.True(m.Success, $"no series {series} in:\n{metrics}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Metrics_count_tokens_requests_and_latencies()
    {
        await using var server = await OwnServer.StartAsync(maxBatch: 2);
        var (engine, url, http) = (server.Engine, server.Url, server.Http);
        const string label = "{model_name=\"fortune-llama\"}";
        var before = await http.GetStringAsync(url + "/metrics");
        Assert.Equal(0, Value(before, "tpllm_num_requests_running" + label));
        Assert.Equal(0, Value(before, "tpllm_generation_tokens_total" + label));

        int[] ids = [32, 1110, 1231];
        for (int i = 0; i < 2; i++)
        {
            using var r = await http.PostAsync(url + "/v1/completions", new StringContent(JsonSerializer.Serialize(new { prompt = ids, max_tokens = 5, temperature = 0, ignore_eos = true }), Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var after = await http.GetStringAsync(url + "/metrics");
        Assert.Equal(10, Value(after, "tpllm_generation_tokens_total" + label));
        Assert.Equal(6, Value(after, "tpllm_prompt_tokens_total" + label));
        Assert.Equal(2, Value(after, "tpllm_request_success_total{finished_reason=\"max_tokens\",model_name=\"fortune-llama\"}"));
        Assert.Equal(2, Value(after, "tpllm_time_to_first_token_seconds_count" + label));
        Assert.Equal(2, Value(after, "tpllm_e2e_request_latency_seconds_count" + label));
        Assert.True(Value(after, "tpllm_e2e_request_latency_seconds_sum" + label) >= Value(after, "tpllm_time_to_first_token_seconds_sum" + label));
        Assert.Equal(2, Value(after, "tpllm_e2e_request_latency_seconds_bucket{model_name=\"fortune-llama\",le=\"+Inf\"}"));
        Assert.Equal(0, Value(after, "tpllm_num_requests_running" + label));
        Assert.Equal(0, Value(after, "tpllm_num_requests_waiting" + label));
    }

    [Fact]
    public async Task Tokenize_and_detokenize_agree_with_what_the_engine_counts()
    {
        await using var server = await OwnServer.StartAsync(maxBatch: 1);
        var (engine, url, http) = (server.Engine, server.Url, server.Http);
        async Task<JsonElement> Post(string path, string json, HttpStatusCode status = HttpStatusCode.OK)
        {
            using var r = await http.PostAsync(url + path, new StringContent(json, Encoding.UTF8, "application/json"));
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == status, body);
            return JsonDocument.Parse(body).RootElement.Clone();
        }

        var tok = await Post("/tokenize", """{"prompt": "A day without sunshine", "return_token_strs": true}""");
        var ids = tok.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(engine.Encode("A day without sunshine"), ids);
        Assert.Equal(ids.Length, tok.GetProperty("count").GetInt32());
        Assert.Equal(512, tok.GetProperty("max_model_len").GetInt32());
        Assert.Equal("A day without sunshine", string.Concat(tok.GetProperty("token_strs").EnumerateArray().Select(e => e.GetString())));
        var back = await Post("/detokenize", JsonSerializer.Serialize(new { tokens = ids }));
        Assert.Equal("A day without sunshine", back.GetProperty("prompt").GetString());

        // a chat's prompt tokens are what /tokenize counts for its messages
        const string messages = """[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a fortune"}]""";
        var chatCount = (await Post("/tokenize", "{\"messages\": " + messages + "}")).GetProperty("count").GetInt32();
        var chat = await Post("/v1/chat/completions", "{\"messages\": " + messages + ", \"max_tokens\": 2}");
        Assert.Equal(chatCount, chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var e = await Post("/detokenize", """{"tokens": [5, 99999999]}""", HttpStatusCode.BadRequest);
        Assert.Contains("token id 99999999 in tokens is outside the vocabulary [0, 50257)", e.GetProperty("error").GetProperty("message").GetString());
        e = await Post("/tokenize", """{"prompt": "x", "messages": []}""", HttpStatusCode.BadRequest);
        Assert.Contains("either prompt or messages", e.GetProperty("error").GetProperty("message").GetString());
    }
}
