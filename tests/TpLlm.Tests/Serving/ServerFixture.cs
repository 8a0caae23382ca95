using System.ClientModel;
using Microsoft.AspNetCore.Builder;
using OpenAI;
using TpLlm.Models;
using TpLlm.Server;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>fortune-llama served over loopback at tp = 2 with up to 16 sequences, shared by a test class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public InferenceEngine Engine { get; private set; } = null!;
    public string BaseUrl { get; private set; } = "";
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(120) };

    public OpenAIClient OpenAi => new(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = new Uri(BaseUrl + "/v1") });

    public static Task<(InferenceEngine, WebApplication, string)> StartAsync(int maxBatch) => StartAsync(maxBatch, 2);

    public static async Task<(InferenceEngine, WebApplication, string)> StartAsync(int maxBatch, int tp, string? modelId = null)
    {
        var engine = await InferenceEngine.StartAsync(new EngineOptions
        {
            ModelPath = Paths.FortuneLlama, Tp = tp, MaxBatch = maxBatch, Model = new ModelOptions { ComputeThreads = 1 }, ModelId = modelId,
        });
        var app = OpenAiServer.Build(engine, "127.0.0.1", 0);
        await app.StartAsync();
        return (engine, app, app.Urls.First());
    }

    public async Task InitializeAsync() => (Engine, _app, BaseUrl) = await StartAsync(16);

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        Engine.Dispose();
        Http.Dispose();
    }
}
