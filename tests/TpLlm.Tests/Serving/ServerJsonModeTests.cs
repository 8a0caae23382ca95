using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using TpLlm.Sampling.Json;
using TpLlm.Serving;
using TpLlm.Tests.Sampling.Json;

namespace TpLlm.Tests.Serving;

/// <summary><c>response_format: {"type": "json_object"}</c> through the OpenAI client, raw HTTP and both <c>IChatClient</c>s.</summary>
public class ServerJsonModeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Model = "fortune-llama";

    // a JSON object if it ended, else a prefix of one (cut by max tokens)
    private static void AssertJson(string text, bool ended)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (ended) Assert.True(JsonStateTests.Oracle(bytes), $"not a JSON object: {text}");
        else Assert.True(new JsonState().Feed(bytes), $"not a prefix of a JSON object: {text}");
    }

    [Fact]
    public async Task Chat_completions_in_json_mode_through_the_OpenAI_client_whole_and_streamed()
    {
        var chat = server.OpenAi.GetChatClient(Model);
        OpenAI.Chat.ChatMessage[] messages = [new UserChatMessage("Tell me a fortune as JSON")];
        var runs = Enumerable.Range(0, 4).Select(async seed =>
        {
            var options = new ChatCompletionOptions
            {
                Temperature = 1.2f, MaxOutputTokenCount = 48, ResponseFormat = OpenAI.Chat.ChatResponseFormat.CreateJsonObjectFormat(),
            };
#pragma warning disable OPENAI001 // Seed is marked experimental in the client
            options.Seed = seed;
#pragma warning restore OPENAI001
            ChatCompletion whole = await chat.CompleteChatAsync(messages, options);
            var streamed = new StringBuilder();
            await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
                foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            return (whole.Content[0].Text, whole.FinishReason, Streamed: streamed.ToString());
        }).ToArray();
        var plain = await chat.CompleteChatAsync(messages, new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 }); // in the same batch
        var results = await Task.WhenAll(runs);
        foreach (var (text, finish, streamed) in results)
        {
            AssertJson(text, finish == OpenAI.Chat.ChatFinishReason.Stop);
            Assert.Equal(text, streamed);
        }
        Assert.Contains(results, r => r.FinishReason == OpenAI.Chat.ChatFinishReason.Stop);
        Assert.False(new JsonState().Feed(Encoding.UTF8.GetBytes(plain.Value.Content[0].Text)), "the plain reply is JSON anyway; the test proves nothing");
    }

    [Fact]
    public async Task Completions_take_response_format_too()
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent(
            """{"prompt": "A fortune in JSON:", "max_tokens": 40, "temperature": 0, "response_format": {"type": "json_object"}}""", Encoding.UTF8, "application/json"));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var choice = body.GetProperty("choices")[0];
        AssertJson(choice.GetProperty("text").GetString()!, choice.GetProperty("finish_reason").GetString() == "stop");
    }

    [Fact]
    public async Task Microsoft_Extensions_AI_json_format_over_http_and_in_process_agree()
    {
        IChatClient overHttp = server.OpenAi.GetChatClient(Model).AsIChatClient();
        using var inProcess = new TpLlmChatClient(server.Engine);
        var options = new ChatOptions { Temperature = 1.1f, Seed = 5, MaxOutputTokens = 40, ResponseFormat = Microsoft.Extensions.AI.ChatResponseFormat.Json };
        var http = await overHttp.GetResponseAsync("Tell me a fortune as JSON", options);
        var local = await inProcess.GetResponseAsync("Tell me a fortune as JSON", options);
        Assert.Equal(http.Text, local.Text);
        AssertJson(local.Text, local.FinishReason == Microsoft.Extensions.AI.ChatFinishReason.Stop);

        // a schema is not enforced, so it is refused, not ignored
        options.ResponseFormat = Microsoft.Extensions.AI.ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type": "object"}""").RootElement, "fortune");
        var e = await Assert.ThrowsAsync<TpLlmException>(() => inProcess.GetResponseAsync("Tell me a fortune", options));
        Assert.Contains("'fortune'", e.Message);
    }

    [Theory]
    [InlineData("\"json\"", "response_format must be an object")]
    [InlineData("{}", "response_format.type is missing")]
    [InlineData("{\"type\": \"xml\"}", "response_format.type 'xml' is not supported")]
    [InlineData("{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {}}}", "'json_schema' is not supported")]
    [InlineData("{\"type\": 3}", "type must be a string")]
    public async Task A_bad_response_format_is_a_400_naming_it(string format, string message)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/chat/completions", new StringContent(
            $$"""{"messages": [{"role": "user", "content": "hi"}], "response_format": {{format}}}""", Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.StartsWith("response_format", error.GetProperty("param").GetString());
    }
}
