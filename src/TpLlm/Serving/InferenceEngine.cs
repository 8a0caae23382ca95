using System.Threading.Channels;
using TpLlm.Chat;
using TpLlm.Models;
using TpLlm.Tokenization;

namespace TpLlm.Serving;

/// <summary>
/// Text in, text out over a <see cref="ContinuousBatcher"/>: tokenizes prompts, applies the chat
/// template, streams text as it becomes final (UTF-8 and stop strings held back), and reports
/// finish reasons and token counts. Shared by the HTTP server and <see cref="TpLlmChatClient"/>.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly HashSet<int> _eos;
    private readonly bool _owns;

    /// <summary>The name clients use for the model.</summary>
    public string ModelId { get; }

    /// <summary>The model folder.</summary>
    public ModelFolder Folder { get; }

    /// <summary>The tokenizer.</summary>
    public HfTokenizer Tokenizer { get; }

    /// <summary>The chat template (the model's, or the documented fallback).</summary>
    public ChatTemplate ChatTemplate { get; }

    /// <summary>The batching engine underneath.</summary>
    public ContinuousBatcher Batcher { get; }

    /// <summary>When the engine started (Unix seconds), for <c>/v1/models</c>.</summary>
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Tokens a sequence can hold, prompt and output together.</summary>
    public int MaxContext => Batcher.MaxContext;

    /// <summary>Wraps a running batcher. With <paramref name="ownsResources"/>, disposing the engine disposes the batcher and the folder.</summary>
    public InferenceEngine(ModelFolder folder, ContinuousBatcher batcher, ChatTemplate chatTemplate, string modelId, bool ownsResources = false)
    {
        Folder = folder;
        Tokenizer = folder.Tokenizer ?? throw new TpLlmException($"{folder.Path}: no tokenizer.json; serving text needs one");
        Batcher = batcher;
        ChatTemplate = chatTemplate;
        ModelId = modelId;
        _owns = ownsResources;
        _eos = [.. folder.Config.EosTokenIds];
    }

    /// <summary>Opens <paramref name="options"/>' model, starts its ranks as threads, and waits until they are loaded.</summary>
    public static async Task<InferenceEngine> StartAsync(EngineOptions options)
    {
        var folder = ModelFolder.Open(options.ModelPath, requireTokenizer: true);
        ContinuousBatcher? batcher = null;
        try
        {
            var template = TemplateFor(options, folder);
            batcher = new ContinuousBatcher(folder, options.Tp, options);
            await batcher.Ready.ConfigureAwait(false);
            return new InferenceEngine(folder, batcher, template, options.ModelId ?? DefaultModelId(folder.Path), ownsResources: true);
        }
        catch
        {
            batcher?.Dispose();
            folder.Dispose();
            throw;
        }
    }

    /// <summary>The id a folder is served under by default: its name.</summary>
    public static string DefaultModelId(string folder) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));

    /// <summary>The chat template <paramref name="options"/> ask for: the given file, else the folder's own (or the fallback).</summary>
    public static ChatTemplate TemplateFor(EngineOptions options, ModelFolder folder) =>
        options.ChatTemplatePath is { } path ? LoadTemplate(path, folder) : ModelTemplate(folder);

    // the model's own template, from the GGUF file already open when it is one (no second read of its metadata)
    private static ChatTemplate ModelTemplate(ModelFolder folder) =>
        folder.Checkpoint is Checkpoints.Gguf.GgufCheckpoint gguf ? ChatTemplate.ForGguf(gguf.File) : ChatTemplate.ForFolder(folder.Path);

    /// <summary>Reads a chat template file given on the command line, with the model's special tokens.</summary>
    public static ChatTemplate LoadTemplate(string path, ModelFolder folder)
    {
        if (!File.Exists(path)) throw new ChatTemplateException($"--chat-template {path}: file not found");
        var model = ModelTemplate(folder);
        return ChatTemplate.Parse(ChatTemplate.ReadSource(path), path, model.BosToken, model.EosToken);
    }

    /// <summary>Tokenizes a completion prompt with the tokenizer's special tokens around it (Llama's <c>&lt;s&gt;</c>), as vLLM does.</summary>
    public int[] Encode(string text) => Tokenizer.Encode(CheckLength(text, "prompt"), addSpecialTokens: true);

    /// <summary>Renders the conversation with the chat template (which writes its own special tokens) and tokenizes it.</summary>
    public int[] EncodeChat(IReadOnlyList<ChatTurn> messages) => Tokenizer.Encode(CheckLength(ChatTemplate.Render(messages, addGenerationPrompt: true), "prompt"));

    // A text far longer than the context could hold is refused before it is tokenized (which for megabytes takes seconds
    // of CPU that every running request would wait for): no token stands for more than MaxTokenBytes bytes.
    private string CheckLength(string text, string field)
    {
        long bytes = System.Text.Encoding.UTF8.GetByteCount(text), atLeast = bytes / Tokenizer.MaxTokenBytes;
        if (atLeast >= MaxContext)
            throw new InvalidRequestException(field,
                $"This model's maximum context length is {MaxContext} tokens. However, the {{field}} has {bytes} bytes of text, at least {atLeast} tokens. "
                + "Please reduce the length of the {field}.", "context_length_exceeded");
        return text;
    }

    /// <summary>
    /// Throws an <see cref="InvalidRequestException"/> naming the field at fault when the request cannot run
    /// (<see cref="GenerationRequest.Validate"/>: prompt and max tokens must fit the context together).
    /// </summary>
    public void Validate(TextRequest r) => ToGeneration(r);

    // the request the batcher runs: without max_tokens, the rest of the context
    private GenerationRequest ToGeneration(TextRequest r) => new GenerationRequest
    {
        PromptIds = r.PromptIds, MaxNewTokens = r.MaxTokens ?? Math.Max(0, MaxContext - r.PromptIds.Length), Sampling = r.Sampling,
        TopLogprobs = r.TopLogprobs ?? 0, WantLogprobs = r.TopLogprobs is not null, IgnoreEos = r.IgnoreEos, StopTokenIds = r.StopTokenIds,
        ResponseFormat = r.ResponseFormat, PromptLogprobs = r.PromptLogprobs,
    }.Validate(MaxContext, Folder.Config.VocabSize, maxTokensMustFit: true);

    /// <summary>
    /// Generates; <paramref name="onDelta"/> (called on the engine's thread — keep it quick) sees
    /// text as it becomes final. Cancelling <paramref name="ct"/> frees the sequence's slot at the
    /// next step and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<TextResult> GenerateAsync(TextRequest r, Action<TextDelta>? onDelta = null, CancellationToken ct = default)
    {
        var request = ToGeneration(r);
        var decoder = Tokenizer.NewStreamingDecoder(r.SkipSpecialTokens);
        var matcher = new StopMatcher(r.Stop);
        var tokens = new List<GeneratedToken>();
        var pending = new List<GeneratedToken>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bool perToken = r.TopLogprobs is not null;

        void Emit(string text)
        {
            if (onDelta is null || (text.Length == 0 && (!perToken || pending.Count == 0))) return;
            onDelta(new TextDelta(text, pending.ToArray()));
            pending.Clear();
        }

        void OnToken(int id, Sampling.TokenLogprobs? lp)
        {
            var tok = new GeneratedToken(id, Tokenizer.TokenBytes(id), lp);
            tokens.Add(tok);
            pending.Add(tok);
            bool hidden = (!r.IgnoreEos && _eos.Contains(id)) || r.StopTokenIds.Contains(id);
            var text = matcher.Add(hidden ? "" : decoder.Add(id));
            if (matcher.Stopped) stop.Cancel();
            Emit(text);
        }

        GeneratedToken[]? prompt = null;
        void OnPrompt(Sampling.TokenLogprobs?[] lps)
        {
            prompt = [.. r.PromptIds.Select((id, i) => new GeneratedToken(id, Tokenizer.TokenBytes(id), lps[i]))];
            onDelta?.Invoke(new TextDelta("", []) { Prompt = prompt });
        }

        var result = await Batcher.Submit(request, OnToken, stop.Token, r.PromptLogprobs is null ? null : OnPrompt).ConfigureAwait(false);
        if (result.Reason == FinishReason.Cancelled && !matcher.Stopped)
        {
            ct.ThrowIfCancellationRequested();
            throw new OperationCanceledException("the request was cancelled");
        }
        if (!matcher.Stopped)
        {
            var tail = matcher.Add(decoder.Flush());
            Emit(tail + matcher.Flush());
        }
        var finish = matcher.Stopped || result.Reason == FinishReason.Eos ? "stop" : "length";
        return new TextResult(matcher.Text, finish, r.PromptIds.Length, tokens) { Prompt = prompt, CachedPromptTokens = result.CachedPromptTokens };
    }

    /// <summary>
    /// Starts <paramref name="r"/> and returns its deltas as a channel (completed when generation
    /// ends) together with the final result. Cancelling <paramref name="ct"/> frees the slot.
    /// </summary>
    public TextStream Stream(TextRequest r, CancellationToken ct = default)
    {
        var channel = Channel.CreateUnbounded<TextDelta>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var result = GenerateAsync(r, d => channel.Writer.TryWrite(d), ct);
        _ = result.ContinueWith(t => channel.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        return new TextStream(channel.Reader, result);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_owns) return;
        Batcher.Dispose();
        Folder.Dispose();
    }
}
