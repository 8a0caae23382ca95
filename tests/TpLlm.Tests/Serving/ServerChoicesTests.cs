using System.Net;
using System.Text;
using System.Text.Json;

namespace TpLlm.Tests.Serving;

/// <summary><c>n</c> choices per prompt and several prompts per completions request, whole and streamed.</summary>
public class ServerChoicesTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<JsonElement> Post(string path, string json)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The data events of a stream, up to [DONE] (which must come last).</summary>
    private async Task<List<JsonElement>> Events(string path, string json)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var data = body.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        return [.. data[..^1].Select(d => JsonDocument.Parse(d).RootElement.Clone())];
    }

    private static string[] Texts(JsonElement response, Func<JsonElement, string> text) =>
        [.. response.GetProperty("choices").EnumerateArray().Select((c, i) => { Assert.Equal(i, c.GetProperty("index").GetInt32()); return text(c); })];

    [Fact]
    public async Task N_choices_are_the_single_requests_with_seeds_seed_plus_i()
    {
        const string prompt = "A day without";
        var whole = await Post("/v1/completions", $$"""{"prompt": "{{prompt}}", "n": 3, "seed": 7, "temperature": 1, "max_tokens": 12, "ignore_eos": true, "logprobs": 1}""");
        var texts = Texts(whole, c => c.GetProperty("text").GetString()!);
        Assert.Equal(3, texts.Length);
        for (int i = 0; i < 3; i++)
        {
            var alone = await Post("/v1/completions", $$"""{"prompt": "{{prompt}}", "seed": {{7 + i}}, "temperature": 1, "max_tokens": 12, "ignore_eos": true}""");
            Assert.Equal(alone.GetProperty("choices")[0].GetProperty("text").GetString(), texts[i]);
            Assert.Equal(0, whole.GetProperty("choices")[i].GetProperty("logprobs").GetProperty("text_offset")[0].GetInt32()); // offsets count per choice
        }
        Assert.True(texts.Distinct().Count() > 1, "three samples at temperature 1 came out equal");
        var usage = whole.GetProperty("usage");
        Assert.Equal(36, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(server.Engine.Encode(prompt).Length, usage.GetProperty("prompt_tokens").GetInt32()); // the prompt counts once
    }

    [Fact]
    public async Task Several_prompts_get_choices_in_prompt_major_order_and_the_stream_carries_the_same_text()
    {
        const string body = "\"prompt\": [\"A day without\", \"Love is\"], \"n\": 2, \"seed\": 3, \"temperature\": 0.8, \"max_tokens\": 10, \"ignore_eos\": true";
        var whole = await Post("/v1/completions", "{" + body + "}");
        var texts = Texts(whole, c => c.GetProperty("text").GetString()!);
        Assert.Equal(4, texts.Length);
        for (int p = 0; p < 2; p++)
        {
            var single = await Post("/v1/completions", $$"""{"prompt": {{(p == 0 ? "\"A day without\"" : "\"Love is\"")}}, "n": 2, "seed": 3, "temperature": 0.8, "max_tokens": 10, "ignore_eos": true}""");
            Assert.Equal(Texts(single, c => c.GetProperty("text").GetString()!), texts[(2 * p)..(2 * p + 2)]);
        }
        Assert.Equal(40, whole.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var events = await Events("/v1/completions", "{" + body + """, "stream": true, "stream_options": {"include_usage": true}}""");
        var streamed = new StringBuilder[4];
        var finish = new string?[4];
        for (int i = 0; i < 4; i++) streamed[i] = new StringBuilder();
        foreach (var e in events[..^1])
        {
            var c = e.GetProperty("choices")[0];
            int i = c.GetProperty("index").GetInt32();
            Assert.Null(finish[i]); // nothing after a choice's finish chunk
            streamed[i].Append(c.GetProperty("text").GetString());
            if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish[i] = c.GetProperty("finish_reason").GetString();
        }
        Assert.Equal(texts, streamed.Select(s => s.ToString()));
        Assert.All(finish, f => Assert.Equal("length", f));
        Assert.Equal(0, events[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(40, events[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Chat_streams_a_role_chunk_and_the_content_of_each_choice()
    {
        const string body = "\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a fortune\"}], \"n\": 2, \"seed\": 5, \"temperature\": 1, \"max_tokens\": 12";
        var whole = await Post("/v1/chat/completions", "{" + body + "}");
        var texts = Texts(whole, c => c.GetProperty("message").GetProperty("content").GetString()!);
        Assert.Equal(2, texts.Length);
        var events = await Events("/v1/chat/completions", "{" + body + """, "stream": true}""");
        var roles = events.Take(2).Select(e => e.GetProperty("choices")[0]).ToList();
        Assert.Equal([0, 1], roles.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(roles, c => Assert.Equal("assistant", c.GetProperty("delta").GetProperty("role").GetString()));
        var streamed = new[] { new StringBuilder(), new StringBuilder() };
        foreach (var e in events.Skip(2))
        {
            var c = e.GetProperty("choices")[0];
            if (c.GetProperty("delta").TryGetProperty("content", out var content))
                streamed[c.GetProperty("index").GetInt32()].Append(content.GetString());
        }
        Assert.Equal(texts, streamed.Select(s => s.ToString()));
    }
}
