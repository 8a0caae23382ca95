using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Prometheus;
using TpLlm.Chat;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>
/// The OpenAI-compatible HTTP API over an <see cref="InferenceEngine"/>: <c>POST /v1/completions</c>,
/// <c>POST /v1/chat/completions</c> (JSON or server-sent events), <c>GET /v1/models</c>, <c>GET /health</c>,
/// <c>GET /metrics</c> (Prometheus), <c>POST /tokenize</c> and <c>POST /detokenize</c>.
/// Bad requests get a 400 with OpenAI's error body; a client that disconnects frees its slot.
/// </summary>
public static class OpenAiServer
{
    /// <summary>Builds the app listening on <paramref name="host"/>:<paramref name="port"/> (port 0 picks a free one).</summary>
    public static WebApplication Build(InferenceEngine engine, string host = "127.0.0.1", int port = 8000)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(host is "0.0.0.0" or "*" ? "*" : host)}:{port}");
        var app = builder.Build();
        app.MapPost("/v1/completions", ctx => Guard(ctx, engine, () => CompletionsEndpoint.HandleAsync(ctx, engine)));
        app.MapPost("/v1/chat/completions", ctx => Guard(ctx, engine, () => ChatEndpoint.HandleAsync(ctx, engine)));
        app.MapGet("/v1/models", ctx => Guard(ctx, engine, () => Models(ctx, engine)));
        app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) => Guard(ctx, engine, () => Model(ctx, engine, id)));
        app.MapPost("/tokenize", ctx => Guard(ctx, engine, () => TokenizeEndpoints.TokenizeAsync(ctx, engine)));
        app.MapPost("/detokenize", ctx => Guard(ctx, engine, () => TokenizeEndpoints.DetokenizeAsync(ctx, engine)));
        app.MapMetrics("/metrics", new ServerMetrics(engine).Registry);
        app.MapGet("/health", ctx =>
        {
            ctx.Response.StatusCode = engine.Batcher.Failure is null ? 200 : 503;
            return Task.CompletedTask;
        });
        return app;
    }

    private static Task Models(HttpContext ctx, InferenceEngine engine) => GenerationRunner.WriteJson(ctx, w =>
    {
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        w.WriteStartObject();
        WriteModel(w, engine);
        w.WriteEndObject();
        w.WriteEndArray();
    });

    // GET /v1/models/{id}: OpenAI's retrieve-model
    private static Task Model(HttpContext ctx, InferenceEngine engine, string id) => id == engine.ModelId
        ? GenerationRunner.WriteJson(ctx, w => WriteModel(w, engine))
        : throw new ApiException(404, $"model '{id}' does not exist; this server serves '{engine.ModelId}'", "model", code: "model_not_found");

    private static void WriteModel(System.Text.Json.Utf8JsonWriter w, InferenceEngine engine)
    {
        w.WriteString("id", engine.ModelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", engine.Created);
        w.WriteString("owned_by", "tpllm");
        w.WriteNumber("max_model_len", engine.MaxContext);
    }

    // every failure becomes an OpenAI-style error; nothing a request does stops the server
    private static async Task Guard(HttpContext ctx, InferenceEngine engine, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; its slot was freed by the cancellation
        }
        catch (Exception e)
        {
            var (status, type, param, code) = e switch
            {
                ApiException a => (a.Status, a.Type, a.Param, a.Code),
                ChatTemplateException => (400, "invalid_request_error", "messages", null),
                TpLlmException when engine.Batcher.Failure is not null => (503, "server_error", null, null),
                TpLlmException => (400, "invalid_request_error", null, null),
                ObjectDisposedException => (503, "server_error", null, null),
                InvalidOperationException => (400, "invalid_request_error", null, null), // e.g. a lone surrogate in a JSON string
                _ => (500, "server_error", (string?)null, (string?)null),
            };
            if (status == 500) Console.Error.WriteLine($"tpllm: {ctx.Request.Path}: {e}");
            if (ctx.Response.HasStarted) return;
            ctx.Response.Clear();
            await GenerationRunner.WriteJson(ctx, w => ErrorWriter.Body(w, e.Message, type, param, code), status);
        }
    }
}
