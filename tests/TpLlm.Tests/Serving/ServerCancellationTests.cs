using System.Net;
using System.Text;
using Microsoft.Extensions.AI;

namespace TpLlm.Tests.Serving;

/// <summary>A client that disconnects mid-stream frees its slot at once.</summary>
public class ServerCancellationTests
{
    [Fact]
    public async Task Disconnecting_mid_stream_frees_the_only_slot_for_the_next_request()
    {
        await using var server = await OwnServer.StartAsync(maxBatch: 1);
        var (engine, url, http) = (server.Engine, server.Url, server.Http);
        engine.Batcher.AfterStep = () => Thread.Sleep(20); // ≥ 10 s for 500 tokens: a loaded machine cannot finish them before the test hangs up

        // a stream that would run 500 tokens if left alone
        var request = new HttpRequestMessage(HttpMethod.Post, url + "/v1/completions")
        {
            Content = new StringContent("""{"prompt": "A day without", "max_tokens": 500, "ignore_eos": true, "stream": true}""", Encoding.UTF8, "application/json"),
        };
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        for (int events = 0; events < 3;)
            if ((await reader.ReadLineAsync())!.StartsWith("data: {", StringComparison.Ordinal)) events++;
        Assert.Equal(1, engine.Batcher.ActiveSequences);
        response.Dispose(); // hang up

        var hungUp = System.Diagnostics.Stopwatch.StartNew();
        while (engine.Batcher.ActiveSequences != 0 && hungUp.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(10);
        Assert.True(engine.Batcher.ActiveSequences == 0, $"the slot is still taken {hungUp.Elapsed.TotalSeconds:F1} s after the client hung up");
        engine.Batcher.AfterStep = null;

        // the next request gets the slot and finishes
        using var next = await http.PostAsync(url + "/v1/completions", new StringContent("""{"prompt": "Love is", "max_tokens": 4}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Cancelling_an_in_process_stream_frees_the_slot()
    {
        await using var server = await OwnServer.StartAsync(maxBatch: 1, tp: 1);
        var engine = server.Engine;
        using var client = new TpLlm.Serving.TpLlmChatClient(engine);
        using var cts = new CancellationTokenSource();
        int updates = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync("Tell me a fortune", new ChatOptions { MaxOutputTokens = 400, AdditionalProperties = new() { ["ignore_eos"] = true } }, cts.Token))
                if (++updates == 3) cts.Cancel();
        });
        var freed = DateTime.UtcNow.AddSeconds(10);
        while (engine.Batcher.ActiveSequences != 0 && DateTime.UtcNow < freed) await Task.Delay(10);
        Assert.Equal(0, engine.Batcher.ActiveSequences);
    }
}
