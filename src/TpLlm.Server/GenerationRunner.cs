using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>Runs one request on the engine and writes the response: one JSON object, or server-sent events.</summary>
internal static class GenerationRunner
{
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task RunAsync(HttpContext ctx, InferenceEngine engine, TextRequest request, IResponseFormat format, RequestParams p)
    {
        engine.Validate(request); // before any byte is sent, so a bad request is still a 400
        var ct = ctx.RequestAborted;
        string id = format.IdPrefix + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!p.Stream)
        {
            var result = await engine.GenerateAsync(request, null, ct);
            await WriteJson(ctx, w =>
            {
                Header(w, id, format.ObjectName, created, engine.ModelId);
                format.WriteChoices(w, result);
                WriteUsage(w, result);
            });
            return;
        }

        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var stream = engine.Stream(request, ct);
        var buffer = new ArrayBufferWriter<byte>(1024);
        if (format is ChatFormat) await Event(ctx, buffer, w => Chunk(w, id, format, created, engine.ModelId, null, null, true)); // the role chunk
        try
        {
            await foreach (var delta in stream.Deltas.ReadAllAsync(ct))
                await Event(ctx, buffer, w => Chunk(w, id, format, created, engine.ModelId, delta, null, false));
        }
        catch (Exception) when (stream.Result.IsFaulted)
        {
            // generation failed: the failure surfaces again from stream.Result below
        }
        TextResult final;
        try
        {
            final = await stream.Result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // headers are out: report the failure in the stream, as OpenAI does
            await Event(ctx, buffer, w => ErrorWriter.Body(w, e.Message, "server_error", null, null));
            return;
        }
        await Event(ctx, buffer, w => Chunk(w, id, format, created, engine.ModelId, null, final.FinishReason, false));
        if (p.IncludeUsage)
            await Event(ctx, buffer, w =>
            {
                Header(w, id, format.ChunkObjectName, created, engine.ModelId);
                w.WriteStartArray("choices");
                w.WriteEndArray();
                WriteUsage(w, final);
            });
        await ctx.Response.Body.WriteAsync(Done, ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    private static void Chunk(Utf8JsonWriter w, string id, IResponseFormat format, long created, string model, TextDelta? delta, string? finish, bool first)
    {
        Header(w, id, format.ChunkObjectName, created, model);
        format.WriteChunkChoices(w, delta, finish, first);
    }

    private static void Header(Utf8JsonWriter w, string id, string obj, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteNull("system_fingerprint");
    }

    private static void WriteUsage(Utf8JsonWriter w, TextResult r)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("completion_tokens", r.CompletionTokens);
        w.WriteNumber("total_tokens", r.PromptTokens + r.CompletionTokens);
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
