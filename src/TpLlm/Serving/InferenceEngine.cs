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
            var template = TemplateFor(options, folder.Path);
            batcher = new ContinuousBatcher(folder, options.Tp, options.MaxBatch, options.Model)
            {
                PrefixCaching = options.PrefixCaching, MaxPrefillTokens = options.MaxPrefillTokens,
            };
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
    public static ChatTemplate TemplateFor(EngineOptions options, string folder) =>
        options.ChatTemplatePath is { } path ? LoadTemplate(path, folder) : ChatTemplate.ForFolder(folder);

    /// <summary>Reads a chat template file given on the command line, with the folder's special tokens.</summary>
    public static ChatTemplate LoadTemplate(string path, string folder)
    {
        if (!File.Exists(path)) throw new ChatTemplateException($"--chat-template {path}: file not found");
        var model = ChatTemplate.ForFolder(folder);
        return ChatTemplate.Parse(File.ReadAllText(path), path, model.BosToken, model.EosToken);
    }

    /// <summary>Tokenizes a completion prompt with the tokenizer's special tokens around it (Llama's <c>&lt;s&gt;</c>), as vLLM does.</summary>
    public int[] Encode(string text) => Tokenizer.Encode(text, addSpecialTokens: true);

    /// <summary>Renders the conversation with the chat template (which writes its own special tokens) and tokenizes it.</summary>
    public int[] EncodeChat(IReadOnlyList<ChatTurn> messages) => Tokenizer.Encode(ChatTemplate.Render(messages, addGenerationPrompt: true));

    /// <summary>
    /// Throws a <see cref="TpLlmException"/> naming the problem when the request cannot run: empty
    /// prompt, prompt or prompt + max tokens over the context, bad sampling values.
    /// </summary>
    public void Validate(TextRequest r)
    {
        r.Sampling.Validate(Folder.Config.VocabSize);
        if (r.PromptIds.Length == 0) throw new TpLlmException("the prompt is empty; give at least one token");
        if (r.MaxTokens < (r.PromptLogprobs is null ? 1 : 0))
            throw new TpLlmException($"max_tokens {r.MaxTokens} must be ≥ {(r.PromptLogprobs is null ? "1 (0 only when scoring the prompt)" : "0")}");
        if (r.PromptLogprobs is < 0 or > 20) throw new TpLlmException($"prompt_logprobs {r.PromptLogprobs} is outside [0, 20]");
        if (r.Sampling.MinTokens > (r.MaxTokens ?? MaxContext - r.PromptIds.Length))
            throw new TpLlmException($"min_tokens {r.Sampling.MinTokens} exceed max_tokens {r.MaxTokens ?? MaxContext - r.PromptIds.Length}");
        if (r.TopLogprobs is < 0 or > 20) throw new TpLlmException($"top_logprobs {r.TopLogprobs} is outside [0, 20]");
        int ctx = MaxContext;
        if (r.PromptIds.Length >= ctx)
            throw new TpLlmException($"the prompt has {r.PromptIds.Length} tokens but the model's context holds {ctx}; at most {ctx - 1} prompt tokens leave room for one new token");
        if (r.PromptIds.Length + r.MaxTokens > ctx)
            throw new TpLlmException($"the model's context holds {ctx} tokens, but {r.PromptIds.Length + r.MaxTokens} were requested ({r.PromptIds.Length} in the prompt, {r.MaxTokens} in max_tokens); lower max_tokens to at most {ctx - r.PromptIds.Length}");
        foreach (var id in r.PromptIds)
            if ((uint)id >= (uint)Folder.Config.VocabSize) throw new TpLlmException($"token id {id} in the prompt is outside the vocabulary [0, {Folder.Config.VocabSize})");
        foreach (var id in r.StopTokenIds)
            if ((uint)id >= (uint)Folder.Config.VocabSize) throw new TpLlmException($"stop_token_ids: {id} is outside the vocabulary [0, {Folder.Config.VocabSize})");
    }

    /// <summary>
    /// Generates; <paramref name="onDelta"/> (called on the engine's thread — keep it quick) sees
    /// text as it becomes final. Cancelling <paramref name="ct"/> frees the sequence's slot at the
    /// next step and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<TextResult> GenerateAsync(TextRequest r, Action<TextDelta>? onDelta = null, CancellationToken ct = default)
    {
        Validate(r);
        var decoder = Tokenizer.NewStreamingDecoder();
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

        var request = new GenerationRequest
        {
            PromptIds = r.PromptIds, MaxNewTokens = r.MaxTokens ?? MaxContext - r.PromptIds.Length, Sampling = r.Sampling,
            TopLogprobs = r.TopLogprobs ?? 0, WantLogprobs = perToken, IgnoreEos = r.IgnoreEos, StopTokenIds = r.StopTokenIds,
            ResponseFormat = r.ResponseFormat, PromptLogprobs = r.PromptLogprobs,
        };
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
