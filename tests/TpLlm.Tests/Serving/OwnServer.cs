using Microsoft.AspNetCore.Builder;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>A server of a test's own (its engine's counters and slots are the test's alone), with a client; disposing stops both.</summary>
public sealed class OwnServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OwnServer(InferenceEngine engine, WebApplication app, string url)
    {
        Engine = engine;
        _app = app;
        Url = url;
    }

    public InferenceEngine Engine { get; }
    public string Url { get; }
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public static async Task<OwnServer> StartAsync(int maxBatch, int tp = 2, string? modelId = null)
    {
        var (engine, app, url) = await ServerFixture.StartAsync(maxBatch, tp, modelId);
        return new OwnServer(engine, app, url);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.DisposeAsync();
        Engine.Dispose();
    }
}
