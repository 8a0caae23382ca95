using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using TpLlm.Checkpoints;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>The server on loopback, driven by the official OpenAI .NET client and Microsoft.Extensions.AI.OpenAI, checked against transformers' reference.</summary>
public class OpenAiServerTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Model = "fortune-llama";

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, string json)
    {
        using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private async Task<string> Complete(object request)
    {
        var (status, body) = await Post("/v1/completions", JsonSerializer.Serialize(request));
        Assert.Equal(HttpStatusCode.OK, status);
        return body.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }

    [Fact]
    public async Task Greedy_completion_equals_the_transformers_reference()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        for (int p = 0; p < 2; p++)
        {
            var ids = reference.ReadI64($"prompt{p}.input_ids").Select(i => (int)i).ToArray();
            var greedy = reference.ReadI64($"prompt{p}.greedy").Select(i => (int)i).ToArray();
            var text = await Complete(new { model = Model, prompt = ids, max_tokens = greedy.Length, temperature = 0, ignore_eos = true });
            Assert.Equal(server.Engine.Tokenizer.Decode(greedy, skipSpecialTokens: true), text); // vLLM leaves <|endoftext|> out of the text
        }
    }

    [Fact]
    public async Task Completion_logprobs_equal_the_reference_top5()
    {
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        var ids = reference.ReadI64("prompt0.input_ids").Select(i => (int)i).ToArray();
        var top5 = reference.ReadF32("prompt0.top5_logprobs");
        var top5Ids = reference.ReadI64("prompt0.top5_ids");
        var (status, body) = await Post("/v1/completions", JsonSerializer.Serialize(new { prompt = ids, max_tokens = 3, temperature = 0, logprobs = 5 }));
        Assert.Equal(HttpStatusCode.OK, status);
        var lp = body.GetProperty("choices")[0].GetProperty("logprobs");
        int last = ids.Length - 1; // the first new token is predicted at the prompt's last position
        Assert.Equal(top5[last * 5], lp.GetProperty("token_logprobs")[0].GetSingle(), 1e-4f);
        var alternatives = lp.GetProperty("top_logprobs")[0].EnumerateObject().ToList();
        Assert.Equal(5, alternatives.Count);
        for (int k = 0; k < 5; k++)
        {
            Assert.Equal(server.Engine.Tokenizer.Decode([(int)top5Ids[last * 5 + k]]), alternatives[k].Name);
            Assert.Equal(top5[last * 5 + k], alternatives[k].Value.GetSingle(), 1e-4f);
        }
        Assert.Equal(3, lp.GetProperty("tokens").GetArrayLength());
        Assert.Equal(3, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(ids.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Stop_strings_end_the_text_before_them()
    {
        var (_, body) = await Post("/v1/completions", """{"prompt": "A day without", "max_tokens": 30, "temperature": 0, "stop": ["--", "zzz"]}""");
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(" a man to his children.\n\t\t", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Stop_token_ids_end_the_output_without_their_text_even_with_ignore_eos()
    {
        var greedy = server.Engine.Tokenizer.Encode(" a man to his children.", addSpecialTokens: false); // the reference's greedy start
        var (status, body) = await Post("/v1/completions", JsonSerializer.Serialize(new { prompt = "A day without", max_tokens = 10, temperature = 0, ignore_eos = true, stop_token_ids = new[] { greedy[2] } }));
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = body.GetProperty("choices")[0];
        Assert.Equal(server.Engine.Tokenizer.Decode(greedy[..2]), choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(3, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32()); // the stop token was generated
    }

    [Fact]
    public async Task Min_tokens_hold_off_the_end_of_sequence()
    {
        var (_, free) = await Post("/v1/completions", """{"prompt": "A day without", "max_tokens": 300, "temperature": 0}""");
        int natural = free.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.Equal("stop", free.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.InRange(natural, 1, 250);
        var (_, held) = await Post("/v1/completions", $$"""{"prompt": "A day without", "max_tokens": 300, "temperature": 0, "min_tokens": {{natural + 20}}}""");
        Assert.True(held.GetProperty("usage").GetProperty("completion_tokens").GetInt32() >= natural + 20);
        var (status, error) = await Post("/v1/completions", """{"prompt": "A day without", "max_tokens": 5, "min_tokens": 6}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("min_tokens 6 exceeds max_tokens 5", error.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Chat_stream_and_non_stream_agree_through_the_OpenAI_client()
    {
        var chat = server.OpenAi.GetChatClient(Model);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20 };
        OpenAI.Chat.ChatMessage[] messages = [new SystemChatMessage("Be wise."), new UserChatMessage("Tell me a fortune")];
        ChatCompletion whole = await chat.CompleteChatAsync(messages, options);
        Assert.Equal(Model, whole.Model);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(20, whole.Usage.OutputTokenCount);

        // the same prompt through /v1/completions, rendered with the (fallback) template by hand
        var expected = await Complete(new { prompt = "System: Be wise.\nUser: Tell me a fortune\nAssistant:", max_tokens = 20, temperature = 0 });
        Assert.Equal(expected, whole.Content[0].Text);

        var streamed = new StringBuilder();
        OpenAI.Chat.ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, finish);
        Assert.Equal(20, usage?.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage?.InputTokenCount);
    }

    [Fact]
    public async Task Chat_logprobs_through_the_OpenAI_client()
    {
        var chat = server.OpenAi.GetChatClient(Model);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        ChatCompletion c = await chat.CompleteChatAsync([new UserChatMessage("Tell me a fortune")], options);
        Assert.Equal(8, c.ContentTokenLogProbabilities.Count);
        Assert.Equal(c.Content[0].Text, string.Concat(c.ContentTokenLogProbabilities.Select(t => t.Token)));
        foreach (var t in c.ContentTokenLogProbabilities)
        {
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.Equal(t.TopLogProbabilities[0].LogProbability, t.LogProbability); // greedy picks the most likely
            Assert.True(t.LogProbability <= 0);
            Assert.True(t.TopLogProbabilities[1].LogProbability <= t.TopLogProbabilities[0].LogProbability);
            Assert.Equal(Encoding.UTF8.GetBytes(t.Token), t.Utf8Bytes?.ToArray());
        }
    }

    [Fact]
    public async Task Models_and_health()
    {
        var models = await server.OpenAi.GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal([Model], models.Value.Select(m => m.Id));
        var one = await server.OpenAi.GetOpenAIModelClient().GetModelAsync(Model); // retrieve-model
        Assert.Equal(Model, one.Value.Id);
        Assert.Equal("tpllm", one.Value.OwnedBy);
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => server.OpenAi.GetOpenAIModelClient().GetModelAsync("gpt-4"));
        Assert.Equal(404, missing.Status);
        Assert.Contains("model 'gpt-4' does not exist", missing.Message);
        using var health = await server.Http.GetAsync(server.BaseUrl + "/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task The_in_process_IChatClient_takes_vLLMs_ignore_eos_from_additional_properties()
    {
        using var client = new TpLlmChatClient(server.Engine);
        var stopped = await client.GetResponseAsync("Tell me a fortune", new ChatOptions { Temperature = 0, MaxOutputTokens = 200 });
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Stop, stopped.FinishReason); // the greedy fortune ends well before 200
        Assert.InRange(stopped.Usage!.OutputTokenCount!.Value, 1, 199);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 200, AdditionalProperties = new() { ["ignore_eos"] = true } };
        var full = await client.GetResponseAsync("Tell me a fortune", options);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, full.FinishReason);
        Assert.Equal(200, full.Usage?.OutputTokenCount);
        // and min_tokens holds the end off past where greedy stopped
        int natural = (int)stopped.Usage!.OutputTokenCount!.Value;
        var held = await client.GetResponseAsync("Tell me a fortune", new ChatOptions
        {
            Temperature = 0, MaxOutputTokens = 200, AdditionalProperties = new() { ["min_tokens"] = Math.Min(natural + 10, 200) },
        });
        Assert.True(held.Usage!.OutputTokenCount >= Math.Min(natural + 10, 200), $"{held.Usage.OutputTokenCount} tokens, natural {natural}");

        // vLLM's and OpenAI's other extras: logit_bias (token id → bias), stop_token_ids, min_p
        string the = server.Engine.Tokenizer.Decode([464]);
        foreach (object bias in new object[] { new Dictionary<int, float> { [464] = 100f }, new Dictionary<string, double> { ["464"] = 100 } })
        {
            var forced = await client.GetResponseAsync("Tell me a fortune", new ChatOptions { Temperature = 0.7f, Seed = 1, MaxOutputTokens = 4, AdditionalProperties = new() { ["logit_bias"] = bias } });
            Assert.Equal(string.Concat(Enumerable.Repeat(the, 4)), forced.Text);
        }
        var greedyIds = server.Engine.Tokenizer.Encode(stopped.Text);
        var cut = await client.GetResponseAsync("Tell me a fortune", new ChatOptions
        {
            Temperature = 0, MaxOutputTokens = 200, AdditionalProperties = new() { ["stop_token_ids"] = new[] { greedyIds[2] }, ["min_p"] = 0.05f },
        });
        Assert.Equal(server.Engine.Tokenizer.Decode(greedyIds[..2]), cut.Text); // it stops where that id comes, and hides it
        var bad = await Assert.ThrowsAsync<TpLlmException>(() => client.GetResponseAsync("hi", new ChatOptions { AdditionalProperties = new() { ["logit_bias"] = "464:100" } }));
        Assert.Contains("logit_bias must map token ids to biases", bad.Message);
    }

    [Fact]
    public async Task Penalties_reach_the_sampler_over_http_and_in_process()
    {
        // completions: the JSON fields become the batcher's sampling parameters
        var ids = server.Engine.Tokenizer.Encode("A day without", addSpecialTokens: true);
        var text = await Complete(new { prompt = ids, max_tokens = 24, temperature = 0, ignore_eos = true, presence_penalty = 1.5, frequency_penalty = 0.5, repetition_penalty = 1.3 });
        var direct = await server.Engine.Batcher.Submit(new TpLlm.Models.GenerationRequest
        {
            PromptIds = ids, MaxNewTokens = 24, IgnoreEos = true,
            Sampling = new TpLlm.Sampling.SamplingParams { PresencePenalty = 1.5f, FrequencyPenalty = 0.5f, RepetitionPenalty = 1.3f },
        });
        Assert.Equal(server.Engine.Tokenizer.Decode(direct.Tokens), text);
        Assert.NotEqual(await Complete(new { prompt = ids, max_tokens = 24, temperature = 0, ignore_eos = true }), text);
        // logit_bias: +100 forces a token at every step
        var forced = await Complete(new { prompt = ids, max_tokens = 5, temperature = 0.7, seed = 1, logit_bias = new Dictionary<string, int> { ["464"] = 100 } });
        Assert.Equal(string.Concat(Enumerable.Repeat(server.Engine.Tokenizer.Decode([464]), 5)), forced);

        // chat: ChatOptions' penalties over HTTP (Microsoft.Extensions.AI.OpenAI) and in process agree, and change the text
        IChatClient overHttp = server.OpenAi.GetChatClient(Model).AsIChatClient();
        using var inProcess = new TpLlmChatClient(server.Engine);
        var plain = new ChatOptions { Temperature = 0, MaxOutputTokens = 40 };
        var penalized = plain.Clone();
        penalized.FrequencyPenalty = 2f;
        penalized.PresencePenalty = 1f;
        var local = await inProcess.GetResponseAsync("Tell me a fortune", penalized);
        Assert.Equal((await overHttp.GetResponseAsync("Tell me a fortune", penalized)).Text, local.Text);
        Assert.NotEqual((await inProcess.GetResponseAsync("Tell me a fortune", plain)).Text, local.Text);
        // vLLM's repetition_penalty as an additional property: with every seen token all but banned, no token repeats
        var banned = plain.Clone();
        banned.AdditionalProperties = new() { ["ignore_eos"] = true, ["repetition_penalty"] = 1000.0 };
        var bannedText = (await inProcess.GetResponseAsync("Tell me a fortune", banned)).Text;
        var expected = await server.Engine.Batcher.Submit(new TpLlm.Models.GenerationRequest
        {
            PromptIds = server.Engine.EncodeChat([new TpLlm.Chat.ChatTurn("user", "Tell me a fortune")]), MaxNewTokens = 40, IgnoreEos = true,
            Sampling = new TpLlm.Sampling.SamplingParams { RepetitionPenalty = 1000f },
        });
        Assert.Equal(expected.Tokens.Length, expected.Tokens.Distinct().Count());
        Assert.Equal(server.Engine.Tokenizer.Decode(expected.Tokens), bannedText);
    }

    [Fact]
    public async Task Microsoft_Extensions_AI_OpenAI_client_and_the_in_process_IChatClient_agree()
    {
        IChatClient overHttp = server.OpenAi.GetChatClient(Model).AsIChatClient();
        using var inProcess = new TpLlmChatClient(server.Engine);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
        var http = await overHttp.GetResponseAsync("Tell me a fortune", options);
        var local = await inProcess.GetResponseAsync("Tell me a fortune", options);
        Assert.Equal(http.Text, local.Text);
        Assert.NotEmpty(local.Text);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, local.FinishReason);
        Assert.Equal(16, local.Usage?.OutputTokenCount);
        Assert.Equal(http.Usage?.InputTokenCount, local.Usage?.InputTokenCount);

        var streamed = new StringBuilder();
        UsageDetails? usage = null;
        await foreach (var u in inProcess.GetStreamingResponseAsync("Tell me a fortune", options))
        {
            streamed.Append(u.Text);
            usage ??= u.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
        }
        Assert.Equal(local.Text, streamed.ToString());
        Assert.Equal(16, usage?.OutputTokenCount);
        Assert.Equal("fortune-llama", inProcess.GetService<ChatClientMetadata>()?.DefaultModelId);

        var httpStream = new StringBuilder();
        await foreach (var u in overHttp.GetStreamingResponseAsync("Tell me a fortune", options)) httpStream.Append(u.Text);
        Assert.Equal(local.Text, httpStream.ToString());
    }

    [Fact]
    public async Task Sixteen_concurrent_greedy_requests_each_equal_their_single_request_output()
    {
        string[] prompts =
        [
            "A day without", "Computers are", "The meaning of life is", "Love is", "Never trust", "It is easier to",
            "The best way to", "Money can", "He who laughs", "Time flies", "A friend", "All that glitters",
            "When in doubt", "Every cloud", "Life is short", "Knowledge is",
        ];
        object Request(int i) => new { prompt = prompts[i], max_tokens = 10 + i % 7, temperature = 0, ignore_eos = true };
        var alone = new string[16];
        for (int i = 0; i < 16; i++) alone[i] = await Complete(Request(i));
        var together = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Complete(Request(i))));
        Assert.Equal(alone, together);
        Assert.Equal(" a man to his children.\n\t\t--", alone[0]); // the reference's greedy text, 10 tokens
    }

    [Fact]
    public async Task Bad_requests_through_the_OpenAI_client_are_a_404_for_an_unknown_model_and_a_400_otherwise()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => server.OpenAi.GetChatClient("gpt-4o").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, e.Status);
        Assert.Contains("model 'gpt-4o' does not exist", e.Message);
        var bad = await Assert.ThrowsAsync<ClientResultException>(() => server.OpenAi.GetChatClient(Model).CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 5 }));
        Assert.Equal(400, bad.Status);
        Assert.Contains("temperature 5 is outside [0, 2]", bad.Message);
    }
}
