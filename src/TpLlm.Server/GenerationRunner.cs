using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>Runs a request's choices on the engine and writes the response: one JSON object, or server-sent events.</summary>
internal static class GenerationRunner
{
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Runs <paramref name="requests"/> (choice i is request i) together in the batch. The usage
    /// counts each prompt once: the requests come in groups of <paramref name="n"/> sharing one prompt.
    /// </summary>
    public static async Task RunAsync(HttpContext ctx, InferenceEngine engine, IReadOnlyList<TextRequest> requests, int n, IResponseFormat format, RequestParams p)
    {
        foreach (var r in requests) engine.Validate(r); // before any byte is sent, so a bad request is still a 400
        var ct = ctx.RequestAborted;
        string id = format.IdPrefix + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(ct); // one choice failing stops the others
        try
        {
            await RunChoicesAsync(ctx, engine, requests, n, format, p, id, created, stopAll);
        }
        finally
        {
            // whatever ends the response — a failed write to a client that left, an error — ends its generation too,
            // even before the server notices the disconnect
            await stopAll.CancelAsync();
        }
    }

    private static async Task RunChoicesAsync(HttpContext ctx, InferenceEngine engine, IReadOnlyList<TextRequest> requests, int n, IResponseFormat format,
        RequestParams p, string id, long created, CancellationTokenSource stopAll)
    {
        var ct = ctx.RequestAborted;
        if (!p.Stream)
        {
            var results = await Task.WhenAll(requests.Select(r => Guarded(engine.GenerateAsync(r, null, stopAll.Token), stopAll)));
            await WriteJson(ctx, w =>
            {
                Header(w, id, format.ObjectName, created, engine.ModelId);
                format.WriteChoices(w, results);
                WriteUsage(w, results, n);
            });
            return;
        }

        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        // every choice's deltas, then its result, in one channel (a choice's deltas are written before its result completes)
        var merged = Channel.CreateUnbounded<(int Index, TextDelta? Delta, TextResult? Final)>(new UnboundedChannelOptions { SingleReader = true });
        var runs = requests.Select(async (r, i) =>
        {
            var final = await Guarded(engine.GenerateAsync(r, d => merged.Writer.TryWrite((i, d, null)), stopAll.Token), stopAll);
            merged.Writer.TryWrite((i, null, final));
        }).ToArray();
        _ = Task.WhenAll(runs).ContinueWith(t => merged.Writer.TryComplete(
            t.IsCanceled ? new OperationCanceledException(ct) : t.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? t.Exception?.InnerException),
            TaskScheduler.Default);
        var buffer = new ArrayBufferWriter<byte>(1024);
        var finals = new TextResult[requests.Count];
        if (format is ChatFormat)
            for (int i = 0; i < requests.Count; i++) await Event(ctx, buffer, w => Chunk(w, id, format, created, engine.ModelId, i, null, null, true)); // the role chunks
        try
        {
            await foreach (var (i, delta, final) in merged.Reader.ReadAllAsync(ct))
            {
                if (final is not null) finals[i] = final;
                await Event(ctx, buffer, w => Chunk(w, id, format, created, engine.ModelId, i, delta, final?.FinishReason, false));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // headers are out: report the failure in the stream, as OpenAI does
            await Event(ctx, buffer, w => ErrorWriter.Body(w, e.Message, "server_error", null, null));
            return;
        }
        if (p.IncludeUsage)
            await Event(ctx, buffer, w =>
            {
                Header(w, id, format.ChunkObjectName, created, engine.ModelId);
                w.WriteStartArray("choices");
                w.WriteEndArray();
                WriteUsage(w, finals, n);
            });
        await ctx.Response.Body.WriteAsync(Done, ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    // a failed choice cancels the request's other choices
    private static async Task<TextResult> Guarded(Task<TextResult> run, CancellationTokenSource stopAll)
    {
        try
        {
            return await run;
        }
        catch
        {
            await stopAll.CancelAsync();
            throw;
        }
    }

    private static void Chunk(Utf8JsonWriter w, string id, IResponseFormat format, long created, string model, int index, TextDelta? delta, string? finish, bool first)
    {
        Header(w, id, format.ChunkObjectName, created, model);
        format.WriteChunkChoices(w, index, delta, finish, first);
    }

    private static void Header(Utf8JsonWriter w, string id, string obj, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteNull("system_fingerprint");
    }

    private static void WriteUsage(Utf8JsonWriter w, IReadOnlyList<TextResult> results, int n)
    {
        int prompt = 0, completion = 0, cached = 0;
        for (int i = 0; i < results.Count; i++)
        {
            if (i % n == 0)
            {
                prompt += results[i].PromptTokens;
                cached += results[i].CachedPromptTokens;
            }
            completion += results[i].CompletionTokens;
        }
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", prompt + completion);
        w.WriteStartObject("prompt_tokens_details"); // OpenAI's: prompt tokens served from the cache
        w.WriteNumber("cached_tokens", cached);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Writes one JSON object as the whole response.</summary>
    public static async Task WriteJson(HttpContext ctx, Action<Utf8JsonWriter> body, int status = 200)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted);
    }

    private static async Task Event(HttpContext ctx, ArrayBufferWriter<byte> buffer, Action<Utf8JsonWriter> body)
    {
        buffer.ResetWrittenCount();
        buffer.Write("data: "u8);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        buffer.Write("\n\n"u8);
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }
}
