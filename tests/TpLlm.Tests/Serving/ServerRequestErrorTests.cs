using System.Net;
using System.Text;
using System.Text.Json;

namespace TpLlm.Tests.Serving;

/// <summary>Every bad request gets a 400 with OpenAI's error body naming the problem, and the server keeps serving.</summary>
public class ServerRequestErrorTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    public static TheoryData<string, string, string> Cases() => new()
    {
        { "/v1/completions", "{bad", "not valid JSON" },
        { "/v1/completions", "[1, 2]", "must be a JSON object" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 0}""", "max_tokens 0 must be ≥ 1" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": -5}""", "max_tokens -5 must be ≥ 1" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 600}""", "This model's maximum context length is 512 tokens. However, you requested 601 tokens (1 in the prompt, 600 in the completion)" },
        { "/v1/completions", "{\"prompt\": [" + string.Join(",", Enumerable.Repeat(464, 600)) + "]}", "This model's maximum context length is 512 tokens. However, you requested 600 tokens in the prompt" },
        { "/v1/completions", """{"prompt": [99999999]}""", "token id 99999999 in prompt is outside the vocabulary [0, 50257)" },
        { "/v1/completions", """{"prompt": "x", "temperature": 5}""", "temperature 5 is outside [0, 2]" },
        { "/v1/completions", """{"prompt": "x", "temperature": "hot"}""", "temperature must be a number" },
        { "/v1/completions", """{"prompt": "x", "top_p": 0}""", "top_p 0 is outside (0, 1]" },
        { "/v1/completions", """{"prompt": "x", "top_k": -2}""", "top_k -2 is outside [-1," },
        { "/v1/completions", """{"prompt": "x", "min_p": 1.5}""", "min_p 1.5 is outside [0, 1]" },
        { "/v1/completions", """{"prompt": "x", "n": 0}""", "n 0 is outside [1, 64]" },
        { "/v1/completions", """{"prompt": "x", "stop_token_ids": [50257]}""", "token id 50257 in stop_token_ids is outside the vocabulary [0, 50257)" },
        { "/v1/completions", """{"prompt": "x", "logit_bias": {"abc": 1}}""", "logit_bias key 'abc' is not a token id in [0, 50257)" },
        { "/v1/completions", """{"prompt": "x", "logit_bias": {"50257": 1}}""", "logit_bias key '50257' is not a token id in [0, 50257)" },
        { "/v1/completions", """{"prompt": "x", "logit_bias": {"5": 150}}""", "logit_bias['5'] 150 is outside [-100, 100]" },
        { "/v1/completions", """{"prompt": "x", "logit_bias": [1]}""", "logit_bias must be an object of token id → bias" },
        { "/v1/completions", """{"prompt": ["x", "y"], "n": 40}""", "2 prompts × n 40 = 80 choices; at most 64" },
        { "/v1/completions", """{"prompt": ["x", 5]}""", "prompt[1] must be a string or an array of token ids" },
        { "/v1/completions", """{"prompt": "x", "n": 2, "best_of": 3}""", "best_of 3 is not supported; only best_of = n (2)" },
        { "/v1/completions", """{"prompt": "x", "logprobs": 50}""", "logprobs 50 is outside [0, 20]" },
        { "/v1/completions", """{"prompt": "x", "stop": 5}""", "stop must be a string or an array of strings" },
        { "/v1/completions", """{"prompt": "x", "stream": "yes"}""", "stream must be true or false" },
        { "/v1/completions", """{"prompt": "x", "presence_penalty": 3}""", "presence_penalty 3 is outside [-2, 2]" },
        { "/v1/completions", """{"prompt": "x", "frequency_penalty": -2.5}""", "frequency_penalty -2.5 is outside [-2, 2]" },
        { "/v1/completions", """{"prompt": "x", "repetition_penalty": 0}""", "repetition_penalty 0 is outside (0, ∞)" },
        { "/v1/completions", """{"max_tokens": 3}""", "prompt is missing" },
        { "/v1/completions", """{"prompt": ""}""", "prompt is empty" },
        { "/v1/completions", """{"prompt": "\ud800"}""", "" },
        { "/v1/chat/completions", """{"messages": []}""", "messages is empty" },
        { "/v1/chat/completions", """{"messages": "hi"}""", "messages must be an array of messages" },
        { "/v1/chat/completions", """{"messages": [{"role": "wizard", "content": "x"}]}""", "messages[0].role 'wizard' is not one of" },
        { "/v1/chat/completions", """{"messages": [{"content": "x"}]}""", "messages[0].role is missing" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}""", "only text parts are supported" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}""", "top_logprobs needs logprobs: true" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0}""", "max_tokens 0 must be ≥ 1" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "stream": true, "temperature": -1}""", "temperature -1 is outside [0, 2]" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_requests_get_400_with_an_openai_error_body(string path, string body, string message)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Contains(message, json.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", json.GetProperty("type").GetString());

        // the server is unharmed
        using var health = await server.Http.GetAsync(server.BaseUrl + "/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var ok = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent("""{"prompt": "Love is", "max_tokens": 2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Unknown_model_is_a_404_with_the_model_not_found_code_and_param()
    {
        foreach (var (path, body) in new[] { ("/v1/chat/completions", """{"model": "llama-70b", "messages": [{"role": "user", "content": "x"}]}"""),
                     ("/v1/completions", """{"model": "gpt-4", "prompt": "x"}"""), ("/tokenize", """{"model": "gpt-4", "prompt": "x"}""") })
        {
            using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode); // as OpenAI and vLLM answer
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("model_not_found", error.GetProperty("code").GetString());
            Assert.Equal("model", error.GetProperty("param").GetString());
            Assert.Contains("does not exist", error.GetProperty("message").GetString());
        }
    }

    // (path, body, status, message part, param, code): what clients (the OpenAI SDKs, LangChain, LiteLLM) read off an error
    public static TheoryData<string, string, int, string, string?, string?> Fields() => new()
    {
        // prompt + max_tokens used to overflow int and pass
        { "/v1/completions", """{"prompt": "x", "max_tokens": 2147483647}""", 400, "However, you requested 2147483648 tokens (1 in the prompt, 2147483647 in the completion)", "prompt", "context_length_exceeded" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 2147483640}""", 400, "maximum context length is 512 tokens", "prompt", "context_length_exceeded" },
        // a chat prompt longer than the context without max_tokens used to say "min_tokens 0 exceed max_tokens -1494"
        { "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + string.Concat(Enumerable.Repeat("word ", 2000)) + "\"}]}", 400,
            "This model's maximum context length is 512 tokens. However, you requested", "messages", "context_length_exceeded" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "max_tokens": 600}""", 400, "in the messages, 600 in the completion", "messages", "context_length_exceeded" },
        { "/v1/completions", """{"prompt": [-1]}""", 400, "token id -1 in prompt is outside the vocabulary [0, 50257)", "prompt", null },
        { "/v1/completions", """{"prompt": [[5, -1]]}""", 400, "token id -1 in prompt[0] is outside the vocabulary [0, 50257)", "prompt", null },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 3, "min_tokens": 5}""", 400, "min_tokens 5 exceeds max_tokens 3", "min_tokens", null },
        { "/v1/completions", """{"prompt": "x", "temperature": 0.5, "top_k": 5, "top_p": 0.5, "min_p": 0.5, "presence_penalty": 1, "min_tokens": 4, "max_tokens": 2}""", 400, "min_tokens 4 exceeds max_tokens 2", "min_tokens", null },
        { "/v1/chat/completions", """{"messages": [{"role": 5, "content": "x"}]}""", 400, "messages[0].role must be a string", "messages", null },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": 5}]}""", 400, "messages[0].content must be", "messages", null },
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task Errors_name_the_field_and_code_clients_match(string path, string body, int status, string message, string? param, string? code)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == (int)response.StatusCode, $"{(int)response.StatusCode}: {text}");
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_prompt_of_megabytes_is_refused_without_tokenizing_it()
    {
        // 25 MB of text: tokenizing it took 1–6 s of CPU that every running request waited for
        string body = JsonSerializer.Serialize(new { prompt = new string('a', 25_000_000), max_tokens = 1 });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("25000000 bytes of text", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Kestrel_request_errors_keep_their_status_with_an_openai_body()
    {
        // 31 MB declared: over Kestrel's 30 MB body limit → 413, not 500 (Kestrel answers before the body is sent)
        var big = await RawPost(31_000_000, "{\"prompt\": \"aaaa");
        Assert.StartsWith("HTTP/1.1 413", big);
        Assert.Contains("\"type\":\"invalid_request_error\"", big);
        // a body that stops arriving: Content-Length 100, 10 bytes sent → 408 once Kestrel's minimum data rate gives up
        var stalled = await RawPost(100, "{\"prompt\":");
        Assert.StartsWith("HTTP/1.1 408", stalled);
        Assert.Contains("\"error\"", stalled);
    }

    // a POST declaring a body of `length` bytes that sends only `start`, then waits for the answer (up to 60 s)
    private async Task<string> RawPost(int length, string start)
    {
        var uri = new Uri(server.BaseUrl);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var head = $"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{start}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        using var reader = new StreamReader(stream);
        var read = reader.ReadToEndAsync();
        Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(60))) == read, $"no answer within 60 s to a body of {length} bytes that stopped");
        return await read;
    }

    [Fact]
    public async Task Bodies_that_are_not_json_are_refused_with_415()
    {
        using var form = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent("prompt=x", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, form.StatusCode);
        Assert.Contains("application/json", JsonDocument.Parse(await form.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString());
        // no Content-Type at all is taken as JSON
        var bare = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"prompt": "Love is", "max_tokens": 2}"""));
        using var ok = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", bare);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Unknown_routes_and_methods_get_json_errors_and_head_works()
    {
        using (var missing = await server.Http.GetAsync(server.BaseUrl + "/v1/nothing"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Contains("no such endpoint", JsonDocument.Parse(await missing.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString());
        }
        using (var wrong = await server.Http.GetAsync(server.BaseUrl + "/v1/completions"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, wrong.StatusCode);
            Assert.Contains("not allowed", JsonDocument.Parse(await wrong.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString());
        }
        foreach (var path in new[] { "/v1/models", "/health", "/v1/models/fortune-llama" })
        {
            using var head = await server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, server.BaseUrl + path));
            Assert.True(head.StatusCode == HttpStatusCode.OK, $"HEAD {path}: {(int)head.StatusCode}");
        }
    }

    [Fact]
    public async Task A_served_name_with_a_slash_is_retrievable_through_the_openai_client()
    {
        await using var own = await OwnServer.StartAsync(1, 1, "org/fortune-llama");
        var client = new OpenAI.OpenAIClient(new System.ClientModel.ApiKeyCredential("unused"), new OpenAI.OpenAIClientOptions { Endpoint = new Uri(own.Url + "/v1") });
        var model = (await client.GetOpenAIModelClient().GetModelAsync("org/fortune-llama")).Value; // the SDK sends /v1/models/org%2Ffortune-llama
        Assert.Equal("org/fortune-llama", model.Id);
        using var plain = await own.Http.GetAsync(own.Url + "/v1/models/org/fortune-llama");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        using var other = await own.Http.GetAsync(own.Url + "/v1/models/org%2Fother");
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task Special_tokens_are_left_out_of_the_text_unless_asked_for()
    {
        // ignore_eos past <|endoftext|>: vLLM's skip_special_tokens (default true) keeps it out of the text
        async Task<string> Text(bool? skip)
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, object?> { ["prompt"] = "A day without", ["max_tokens"] = 30, ["temperature"] = 0, ["ignore_eos"] = true, ["skip_special_tokens"] = skip });
            using var r = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;
        }
        string skipped = await Text(null), kept = await Text(false);
        Assert.Contains("<|endoftext|>", kept); // the greedy continuation passes the end-of-sequence token (transformers' reference)
        Assert.DoesNotContain("<|endoftext|>", skipped);
        Assert.Equal(kept.Replace("<|endoftext|>", ""), skipped);
    }
}
