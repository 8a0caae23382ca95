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
        // a request no endpoint takes (unknown path: 404, wrong method: 405) gets OpenAI's error body, not an empty one
        app.UseStatusCodePages(sc => sc.HttpContext.Response.HasStarted ? Task.CompletedTask : GenerationRunner.WriteJson(sc.HttpContext, w =>
            ErrorWriter.Body(w, sc.HttpContext.Response.StatusCode == 405
                ? $"method {sc.HttpContext.Request.Method} is not allowed on {sc.HttpContext.Request.Path}"
                : $"no such endpoint: {sc.HttpContext.Request.Method} {sc.HttpContext.Request.Path}", "invalid_request_error", null, null),
            sc.HttpContext.Response.StatusCode));
        string[] get = ["GET", "HEAD"];
        app.MapPost("/v1/completions", ctx => Guard(ctx, engine, () => CompletionsEndpoint.HandleAsync(ctx, engine), "prompt"));
        app.MapPost("/v1/chat/completions", ctx => Guard(ctx, engine, () => ChatEndpoint.HandleAsync(ctx, engine), "messages"));
        app.MapMethods("/v1/models", get, ctx => Guard(ctx, engine, () => Models(ctx, engine)));
        // a catch-all, so an id with a slash (org/name, the Hugging Face form) is found whether the client escapes it or not
        app.MapMethods("/v1/models/{**id}", get, (HttpContext ctx, string id) => Guard(ctx, engine, () => Model(ctx, engine, Uri.UnescapeDataString(id))));
        app.MapPost("/tokenize", ctx => Guard(ctx, engine, () => TokenizeEndpoints.TokenizeAsync(ctx, engine)));
        app.MapPost("/detokenize", ctx => Guard(ctx, engine, () => TokenizeEndpoints.DetokenizeAsync(ctx, engine)));
        app.MapMetrics("/metrics", new ServerMetrics(engine).Registry);
        app.MapMethods("/health", get, ctx =>
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
        : throw new ApiException(404, $"The model '{id}' does not exist; this server serves '{engine.ModelId}'", "model", code: "model_not_found");

    private static void WriteModel(System.Text.Json.Utf8JsonWriter w, InferenceEngine engine)
    {
        w.WriteString("id", engine.ModelId);
        w.WriteString("object", "model");
        w.WriteNumber("created", engine.Created);
        w.WriteString("owned_by", "tpllm");
        w.WriteNumber("max_model_len", engine.MaxContext);
    }

    // every failure becomes an OpenAI-style error; nothing a request does stops the server. promptParam names the prompt
    // field of the endpoint (chat: messages) in errors about the prompt.
    private static async Task Guard(HttpContext ctx, InferenceEngine engine, Func<Task> body, string promptParam = "prompt")
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
            string Name(string field) => field == "prompt" ? promptParam : field;
            var (status, type, param, code) = e switch
            {
                ApiException a => (a.Status, a.Type, a.Param, a.Code),
                BadHttpRequestException b => (b.StatusCode, "invalid_request_error", null, null), // Kestrel's: body too large (413), too slow (408)…
                InvalidRequestException r => (400, "invalid_request_error", Name(r.Field), r.Code),
                ChatTemplateException => (400, "invalid_request_error", "messages", null),
                TpLlmException when engine.Batcher.Failure is not null => (503, "server_error", null, null),
                TpLlmException => (400, "invalid_request_error", null, null),
                ObjectDisposedException => (503, "server_error", null, null),
                InvalidOperationException => (400, "invalid_request_error", null, null), // e.g. a lone surrogate in a JSON string
                _ => (500, "server_error", (string?)null, (string?)null),
            };
            string message = e is InvalidRequestException ire ? ire.MessageNaming(Name) : e.Message;
            if (status == 500) TpLlm.IO.StdStreams.Err.WriteLine($"tpllm: {ctx.Request.Path}: {e}");
            if (ctx.Response.HasStarted) return;
            ctx.Response.Clear();
            await GenerationRunner.WriteJson(ctx, w => ErrorWriter.Body(w, message, type, param, code), status);
        }
    }
}
