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
        { "/v1/completions", """{"model": "gpt-4", "prompt": "x"}""", "model 'gpt-4' does not exist" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 0}""", "max_tokens 0 must be ≥ 1" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": -5}""", "max_tokens -5 must be ≥ 1" },
        { "/v1/completions", """{"prompt": "x", "max_tokens": 600}""", "context holds 512 tokens, but 601 were requested" },
        { "/v1/completions", "{\"prompt\": [" + string.Join(",", Enumerable.Repeat(464, 600)) + "]}", "the prompt has 600 tokens but the model's context holds 512" },
        { "/v1/completions", """{"prompt": [99999999]}""", "token id 99999999 in the prompt is outside the vocabulary [0, 50257)" },
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
        { "/v1/completions", """{"prompt": ""}""", "the prompt is empty" },
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
    public async Task Unknown_model_has_the_model_not_found_code_and_param()
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/chat/completions",
            new StringContent("""{"model": "llama-70b", "messages": [{"role": "user", "content": "x"}]}""", Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
    }
}
