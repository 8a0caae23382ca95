using System.Net;
using System.Text;
using System.Text.Json;
using TpLlm.Checkpoints;

namespace TpLlm.Tests.Serving;

/// <summary><c>echo</c> in /v1/completions: the prompt's text, tokens and log-probabilities (lm-eval's loglikelihood requests), whole and streamed.</summary>
public class ServerEchoTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, object request)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(JsonSerializer.Serialize(request), Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task Echo_with_max_tokens_0_scores_the_prompt_like_transformers()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        var ids = reference.ReadI64("prompt2.input_ids").Select(i => (int)i).ToArray();
        var logits = reference.ReadF32("prompt2.logits");
        var topIds = reference.ReadI64("prompt2.top5_ids");
        int V = logits.Length / ids.Length;
        var (status, body) = await Post("/v1/completions", new { prompt = ids, max_tokens = 0, echo = true, logprobs = 5 });
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var choice = body.GetProperty("choices")[0];
        var tok = server.Engine.Tokenizer;
        Assert.Equal(tok.Decode(ids), choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var lp = choice.GetProperty("logprobs");
        Assert.Equal(ids.Select(id => tok.Decode([id])), lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(JsonValueKind.Null, lp.GetProperty("token_logprobs")[0].ValueKind);
        Assert.Equal(JsonValueKind.Null, lp.GetProperty("top_logprobs")[0].ValueKind);
        for (int i = 1; i < ids.Length; i++)
        {
            Assert.Equal(ReferenceLogprobs.At(logits.AsSpan((i - 1) * V, V), ids[i]), lp.GetProperty("token_logprobs")[i].GetDouble(), 1e-3);
            // the token itself first, then the reference's top 5 (the token once if it is among them)
            var top = lp.GetProperty("top_logprobs")[i].EnumerateObject().Select(e => e.Name).ToList();
            var expectedTop = new[] { tok.Decode([ids[i]]) }.Concat(Enumerable.Range(0, 5).Select(k => tok.Decode([(int)topIds[(i - 1) * 5 + k]]))).Distinct().ToList();
            Assert.Equal(expectedTop, top);
        }
        var offsets = lp.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToArray();
        Assert.Equal(0, offsets[0]);
        for (int i = 1; i < ids.Length; i++) Assert.Equal(offsets[i - 1] + tok.Decode([ids[i - 1]]).Length, offsets[i]);
        Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(ids.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Echo_puts_the_prompt_before_the_completion_whole_and_streamed()
    {
        const string prompt = "A day without";
        var (_, plain) = await Post("/v1/completions", new { prompt, max_tokens = 6, temperature = 0, logprobs = 2 });
        var (status, echoed) = await Post("/v1/completions", new { prompt, max_tokens = 6, temperature = 0, logprobs = 2, echo = true });
        Assert.True(status == HttpStatusCode.OK, echoed.ToString());
        var completion = plain.GetProperty("choices")[0];
        var choice = echoed.GetProperty("choices")[0];
        Assert.Equal(prompt + completion.GetProperty("text").GetString(), choice.GetProperty("text").GetString());
        int promptTokens = server.Engine.Encode(prompt).Length;
        var tokens = choice.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
        Assert.Equal(promptTokens + 6, tokens.Length);
        Assert.Equal(completion.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()), tokens[promptTokens..]);
        Assert.Equal(completion.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetSingle()),
            choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Skip(promptTokens).Select(t => t.GetSingle()));
        var offsets = choice.GetProperty("logprobs").GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToArray();
        for (int i = 1; i < offsets.Length; i++) Assert.Equal(offsets[i - 1] + tokens[i - 1]!.Length, offsets[i]);

        // streamed: the first chunk opens with the prompt, and the text adds up to the same
        using var response = await server.Http.PostAsync(server.BaseUrl + "/v1/completions", new StringContent(
            JsonSerializer.Serialize(new { prompt, max_tokens = 6, temperature = 0, logprobs = 2, echo = true, stream = true }), Encoding.UTF8, "application/json"));
        var chunks = (await response.Content.ReadAsStringAsync()).Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l["data: ".Length..]).RootElement.GetProperty("choices")).Where(c => c.GetArrayLength() > 0).Select(c => c[0]).ToList();
        Assert.StartsWith(prompt, chunks[0].GetProperty("text").GetString());
        Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(chunks.Select(c => c.GetProperty("text").GetString())));
        var streamedTokens = chunks.Where(c => c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
            .SelectMany(c => c.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(tokens, streamedTokens);

        // echo alone: the prompt back, no model scores shown
        var (_, only) = await Post("/v1/completions", new { prompt = new[] { prompt, "Love is" }, max_tokens = 0, echo = true });
        Assert.Equal([prompt, "Love is"], only.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()));
        Assert.All(only.GetProperty("choices").EnumerateArray(), c => Assert.Equal(JsonValueKind.Null, c.GetProperty("logprobs").ValueKind));
    }

    [Fact]
    public async Task VLLMs_prompt_logprobs_give_each_prompt_token_its_logprob_rank_and_top_ones()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        var ids = reference.ReadI64("prompt2.input_ids").Select(i => (int)i).ToArray();
        var logits = reference.ReadF32("prompt2.logits");
        var topIds = reference.ReadI64("prompt2.top5_ids");
        int V = logits.Length / ids.Length;
        var (status, body) = await Post("/v1/completions", new { prompt = ids, max_tokens = 2, temperature = 0, prompt_logprobs = 3 });
        Assert.True(status == HttpStatusCode.OK, body.ToString());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind); // no logprobs asked for the completion
        Assert.Equal(server.Engine.Tokenizer.Decode((await server.Engine.Batcher.Submit(new TpLlm.Models.GenerationRequest { PromptIds = ids, MaxNewTokens = 2 })).Tokens),
            choice.GetProperty("text").GetString()); // and no echo
        var entries = choice.GetProperty("prompt_logprobs").EnumerateArray().ToArray();
        Assert.Equal(ids.Length, entries.Length);
        Assert.Equal(JsonValueKind.Null, entries[0].ValueKind);
        for (int i = 1; i < ids.Length; i++)
        {
            var row = logits.AsSpan((i - 1) * V, V);
            int rank = 1;
            foreach (var x in row) if (x > row[ids[i]]) rank++;
            var props = entries[i].EnumerateObject().ToList();
            Assert.Equal(ids[i].ToString(), props[0].Name); // the prompt token first
            Assert.Equal(rank, props[0].Value.GetProperty("rank").GetInt32());
            Assert.Equal(server.Engine.Tokenizer.Decode([ids[i]]), props[0].Value.GetProperty("decoded_token").GetString());
            var top = props.Skip(1).ToList();
            var expectedTop = Enumerable.Range(0, 3).Select(k => (int)topIds[(i - 1) * 5 + k]).Where(id => id != ids[i]).ToList();
            Assert.Equal(expectedTop.Select(id => id.ToString()), top.Select(t => t.Name));
            foreach (var t in top) Assert.Equal(Enumerable.Range(0, 3).First(k => (int)topIds[(i - 1) * 5 + k] == int.Parse(t.Name)) + 1, t.Value.GetProperty("rank").GetInt32());
        }

        // chat: beside the choices
        var (chatStatus, chat) = await Post("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "Tell me a fortune" } }, max_tokens = 2, prompt_logprobs = 1 });
        Assert.True(chatStatus == HttpStatusCode.OK, chat.ToString());
        var promptEntries = chat.GetProperty("prompt_logprobs").EnumerateArray().ToArray();
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), promptEntries.Length);
        Assert.Equal(JsonValueKind.Null, promptEntries[0].ValueKind);
        Assert.InRange(promptEntries[1].EnumerateObject().Count(), 1, 2);
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "prompt_logprobs": 1, "stream": true}""", "prompt_logprobs is not supported with stream")]
    [InlineData("/v1/completions", """{"prompt": "hi", "prompt_logprobs": 21}""", "prompt_logprobs 21 is outside [0, 20]")]
    [InlineData("/v1/completions", """{"prompt": "hi", "max_tokens": 0}""", "max_tokens 0 must be ≥ 1 (0 only with echo)")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "echo": true}""", "echo is not supported in chat completions")]
    [InlineData("/v1/completions", """{"prompt": "hi", "echo": "yes"}""", "echo must be true or false")]
    public async Task Bad_echo_requests_are_400s(string path, string body, string message)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, text);
    }
}
