using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>Tool calling is not implemented, so a request that lets the model call a tool is refused rather than answered as if there were none.</summary>
public class ServerToolsTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Tools = """[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]""";

    private async Task<(HttpStatusCode, JsonElement)> Chat(string extra)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/chat/completions", new StringContent(
            $$"""{"messages": [{"role": "user", "content": "Weather?"}], "max_tokens": 3{{extra}}}""", Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Theory]
    [InlineData(", \"tools\": " + Tools)]
    [InlineData(", \"tools\": " + Tools + ", \"tool_choice\": \"auto\"")]
    [InlineData(", \"tools\": " + Tools + ", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}")]
    public async Task Tools_the_model_may_call_are_a_400_naming_them(string extra)
    {
        var (status, body) = await Chat(extra);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("tools are not supported: this server does not parse tool calls (1 tools given)", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("tools", body.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Deprecated_functions_and_a_completion_suffix_are_400s_too()
    {
        var (status, body) = await Chat(""", "functions": [{"name": "get_weather", "parameters": {}}]""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("functions are not supported", body.GetProperty("error").GetProperty("message").GetString());
        (status, _) = await Chat(""", "functions": [{"name": "get_weather", "parameters": {}}], "function_call": "none" """);
        Assert.Equal(HttpStatusCode.OK, status);
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent(
            """{"prompt": "def f(", "suffix": "return x", "max_tokens": 3}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("suffix is not supported", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(", \"tools\": " + Tools + ", \"tool_choice\": \"none\"")]
    [InlineData(", \"tools\": []")]
    public async Task Tools_the_model_may_not_call_are_fine(string extra)
    {
        var (status, body) = await Chat(extra);
        Assert.True(status == HttpStatusCode.OK, body.ToString());
    }

    [Fact]
    public async Task The_in_process_IChatClient_refuses_tools_unless_their_mode_is_none()
    {
        using var client = new TpLlmChatClient(server.Engine);
        var tool = AIFunctionFactory.Create(() => "sunny", "get_weather");
        var e = await Assert.ThrowsAsync<TpLlmException>(() => client.GetResponseAsync("Weather?", new ChatOptions { Tools = [tool], MaxOutputTokens = 3 }));
        Assert.Contains("tools are not supported", e.Message);
        var reply = await client.GetResponseAsync("Weather?", new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.None, MaxOutputTokens = 3 });
        Assert.NotNull(reply.Text);
    }
}
