using System.Net;
using System.Text;
using TpLlm.Tests.Fuzz;

namespace TpLlm.Tests.Serving;

/// <summary>Mutated request bodies: every answer is a 200 or a 400 (a 404 for an unknown model) — never a 500, a hang or a dead server.</summary>
public class ServerFuzzTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static readonly (string Path, string Body)[] Seeds =
    [
        ("/v1/completions", """{"model": "fortune-llama", "prompt": "A day without", "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "seed": 3, "stop": ["\n"], "logprobs": 2}"""),
        ("/v1/completions", """{"prompt": [32, 1110, 1231], "max_tokens": 2, "stream": true, "stream_options": {"include_usage": true}, "min_p": 0.1}"""),
        ("/v1/chat/completions", """{"model": "fortune-llama", "messages": [{"role": "system", "content": "Be wise."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 2, "logprobs": true, "top_logprobs": 2}"""),
        ("/v1/chat/completions", """{"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 2, "stream": true, "temperature": 0, "stop": "x"}"""),
    ];

    [Fact]
    public async Task Mutated_requests_get_200_or_400_and_the_server_stays_up()
    {
        int n = int.TryParse(Environment.GetEnvironmentVariable("TPLLM_FUZZ_CASES"), out int c) && c > 0 ? c : 600;
        int ok = 0, bad = 0;
        for (int i = 0; i < n; i++)
        {
            var m = new Mutator(i);
            var (path, seed) = Seeds[i % Seeds.Length];
            var body = m.MutateJson(seed);
            using var response = await server.Http.PostAsync(server.BaseUrl + path, new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            // a mutated model name is a 404 model_not_found, as OpenAI answers
            bool unknownModel = response.StatusCode == HttpStatusCode.NotFound && text.Contains("\"model_not_found\"");
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadRequest || unknownModel,
                $"case {i}: {(int)response.StatusCode} {text}\nbody: {body}");
            if (response.StatusCode == HttpStatusCode.OK) ok++; else bad++;
        }
        using var health = await server.Http.GetAsync(server.BaseUrl + "/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.True(ok > 0 && bad > 0, $"{ok} accepted, {bad} refused: the mutations should produce both");
    }
}
