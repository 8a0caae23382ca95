using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using TpLlm.Chat;
using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over an in-process <see cref="InferenceEngine"/>:
/// a .NET app talks to a tensor-parallel TpLlm model the way it talks to any chat service, with
/// streaming, and without HTTP. Calls may run concurrently; they share the engine's batch.
/// </summary>
public sealed class TpLlmChatClient : IChatClient
{
    private readonly InferenceEngine _engine;
    private readonly bool _ownsEngine;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Wraps <paramref name="engine"/>; with <paramref name="ownsEngine"/>, disposing the client disposes it.</summary>
    public TpLlmChatClient(InferenceEngine engine, bool ownsEngine = false)
    {
        _engine = engine;
        _ownsEngine = ownsEngine;
        _metadata = new ChatClientMetadata("tpllm", null, engine.ModelId);
    }

    /// <summary>Loads the model in <paramref name="modelPath"/> over <paramref name="tp"/> thread ranks and returns a client that owns it.</summary>
    public static async Task<TpLlmChatClient> OpenAsync(string modelPath, int tp = 1, int maxBatch = 16) =>
        new(await InferenceEngine.StartAsync(new EngineOptions { ModelPath = modelPath, Tp = tp, MaxBatch = maxBatch }).ConfigureAwait(false), ownsEngine: true);

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = ToRequest(messages, options);
        var result = await _engine.GenerateAsync(request, null, cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ResponseId = NewId(), ModelId = _engine.ModelId, CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = ToFinishReason(result.FinishReason), Usage = ToUsage(result),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = ToRequest(messages, options);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stream = _engine.Stream(request, cts.Token);
        string id = NewId();
        try
        {
            await foreach (var delta in stream.Deltas.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                if (delta.Text.Length > 0)
                    yield return new ChatResponseUpdate(ChatRole.Assistant, delta.Text) { ResponseId = id, MessageId = id, ModelId = _engine.ModelId };
        }
        finally
        {
            cts.Cancel(); // a consumer that stops early frees the slot
        }
        var result = await stream.Result.ConfigureAwait(false);
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(ToUsage(result))])
        {
            ResponseId = id, MessageId = id, ModelId = _engine.ModelId, FinishReason = ToFinishReason(result.FinishReason),
        };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(_engine) ? _engine
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsEngine) _engine.Dispose();
    }

    private TextRequest ToRequest(IEnumerable<ChatMessage> messages, ChatOptions? o)
    {
        if (o?.ModelId is { } model && model != _engine.ModelId)
            throw new TpLlmException($"model '{model}' is not served here; this client serves '{_engine.ModelId}'");
        if (o?.Tools is { Count: > 0 } tools && o.ToolMode is not NoneChatToolMode)
            throw new TpLlmException($"tools are not supported: TpLlm does not parse tool calls ({tools.Count} tools given); set ToolMode = ChatToolMode.None to answer without them");
        var turns = messages.Select(m => new ChatTurn(m.Role.Value, m.Text)).ToList();
        if (turns.Count == 0) throw new TpLlmException("no messages: give at least one");
        var sampling = new SamplingParams
        {
            Temperature = o?.Temperature ?? 1f, TopP = o?.TopP ?? 1f, TopK = o?.TopK ?? 0,
            PresencePenalty = o?.PresencePenalty ?? 0f, FrequencyPenalty = o?.FrequencyPenalty ?? 0f,
            // vLLM's extra parameter, passed as ChatOptions.AdditionalProperties["repetition_penalty"]
            RepetitionPenalty = o?.AdditionalProperties?.TryGetValue("repetition_penalty", out float rp) == true ? rp : 1f,
            MinTokens = o?.AdditionalProperties?.TryGetValue("min_tokens", out int minTokens) == true ? minTokens : 0,
            MinP = o?.AdditionalProperties?.TryGetValue("min_p", out float minP) == true ? minP : 0f,
            LogitBias = LogitBias(o?.AdditionalProperties),
            Seed = o?.Seed is { } seed ? (ulong)seed : (ulong)System.Diagnostics.Stopwatch.GetTimestamp(),
        }.Validate();
        return new TextRequest
        {
            PromptIds = _engine.EncodeChat(turns), MaxTokens = o?.MaxOutputTokens, Sampling = sampling,
            Stop = o?.StopSequences?.ToArray() ?? [],
            // vLLM's extra parameter, passed as ChatOptions.AdditionalProperties["ignore_eos"] = true
            IgnoreEos = o?.AdditionalProperties?.TryGetValue("ignore_eos", out bool ignoreEos) == true && ignoreEos,
            StopTokenIds = o?.AdditionalProperties?.TryGetValue("stop_token_ids", out IEnumerable<int>? stopIds) == true && stopIds is not null ? [.. stopIds] : [],
            ResponseFormat = ToResponseFormat(o?.ResponseFormat),
        };
    }

    // OpenAI's logit_bias (token id → bias) as AdditionalProperties["logit_bias"], with integer or string keys
    private static Dictionary<int, float>? LogitBias(AdditionalPropertiesDictionary? extra)
    {
        if (extra is null || !extra.TryGetValue("logit_bias", out object? value) || value is null) return null;
        var bias = new Dictionary<int, float>();
        switch (value)
        {
            case IEnumerable<KeyValuePair<int, float>> byId:
                foreach (var (id, b) in byId) bias[id] = b;
                break;
            case IEnumerable<KeyValuePair<int, double>> byIdDouble:
                foreach (var (id, b) in byIdDouble) bias[id] = (float)b;
                break;
            case IEnumerable<KeyValuePair<string, double>> byText:
                foreach (var (key, b) in byText)
                    bias[int.TryParse(key, out int id) ? id : throw new TpLlmException($"logit_bias key '{key}' is not a token id")] = (float)b;
                break;
            default:
                throw new TpLlmException($"logit_bias must map token ids to biases, not {value.GetType().Name}");
        }
        return bias.Count == 0 ? null : bias;
    }

    // ChatResponseFormat.Json is JSON mode; a schema is not enforced, so it is refused rather than ignored
    private static ResponseFormat ToResponseFormat(ChatResponseFormat? format) => format switch
    {
        null or ChatResponseFormatText => ResponseFormat.Text,
        ChatResponseFormatJson { Schema: null } => ResponseFormat.JsonObject,
        ChatResponseFormatJson json => throw new TpLlmException(
            $"ChatResponseFormat.ForJsonSchema ('{json.SchemaName ?? "unnamed"}') is not supported: TpLlm enforces JSON objects (ChatResponseFormat.Json), not schemas"),
        _ => throw new TpLlmException($"response format {format.GetType().Name} is not supported"),
    };

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    private static ChatFinishReason ToFinishReason(string reason) => reason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private static UsageDetails ToUsage(TextResult r) =>
        new()
        {
            InputTokenCount = r.PromptTokens, OutputTokenCount = r.CompletionTokens, TotalTokenCount = r.PromptTokens + r.CompletionTokens,
            CachedInputTokenCount = r.CachedPromptTokens,
        };
}
