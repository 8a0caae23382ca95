using System.Text.RegularExpressions;
using OpenAI.Chat;

namespace TpLlm.Tests.Serving;

/// <summary>A multi-turn chat through the OpenAI client: the next turn's prompt reuses the conversation's cached prefix, and says so in usage and /metrics.</summary>
public class ServerPrefixCachingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<double> Metric(string name)
    {
        var text = await server.Http.GetStringAsync(server.BaseUrl + "/metrics");
        var m = Regex.Match(text, "^" + name + @"\{[^}]*\} (\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{name} not in /metrics");
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task The_next_turn_of_a_chat_is_served_from_the_cached_conversation()
    {
        var chat = server.OpenAi.GetChatClient("fortune-llama");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        var conversation = new List<ChatMessage> { new SystemChatMessage("Be wise."), new UserChatMessage("Tell me a fortune") };
        ChatCompletion first = await chat.CompleteChatAsync(conversation, options);
        Assert.Equal(0, first.Usage.InputTokenDetails.CachedTokenCount);
        double hitsBefore = await Metric("tpllm_prefix_cache_hits_total");

        conversation.Add(new AssistantChatMessage(first.Content[0].Text));
        conversation.Add(new UserChatMessage("And another one"));
        ChatCompletion second = await chat.CompleteChatAsync(conversation, options);
        int cached = second.Usage.InputTokenDetails.CachedTokenCount;
        Assert.InRange(cached, first.Usage.InputTokenCount, second.Usage.InputTokenCount - 1); // at least the first prompt
        Assert.Equal(hitsBefore + cached, await Metric("tpllm_prefix_cache_hits_total"));
        Assert.True(await Metric("tpllm_prefix_cache_queries_total") >= first.Usage.InputTokenCount + second.Usage.InputTokenCount);

        // the same turn without the cache gives the same reply
        server.Engine.Batcher.PrefixCaching = false;
        try
        {
            ChatCompletion cold = await chat.CompleteChatAsync(conversation, options);
            Assert.Equal(0, cold.Usage.InputTokenDetails.CachedTokenCount);
            Assert.Equal(second.Content[0].Text, cold.Content[0].Text);
        }
        finally
        {
            server.Engine.Batcher.PrefixCaching = true;
        }
    }

    [Fact]
    public async Task The_in_process_IChatClient_reports_cached_input_tokens()
    {
        using var client = new TpLlm.Serving.TpLlmChatClient(server.Engine);
        var options = new Microsoft.Extensions.AI.ChatOptions { Temperature = 0, MaxOutputTokens = 4 };
        Microsoft.Extensions.AI.ChatMessage[] question = [new(Microsoft.Extensions.AI.ChatRole.User, "What is the meaning of a long and winding road?")];
        var once = await client.GetResponseAsync(question, options);
        var twice = await client.GetResponseAsync(question, options); // the same prompt: all but its last token comes from the cache
        Assert.Equal(once.Usage!.InputTokenCount - 1, twice.Usage!.CachedInputTokenCount);
        Assert.Equal(once.Text, twice.Text);
    }
}
