using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>
/// Continues several prompts at once on one rank; every rank of the group runs the same loop
/// (SPMD) and reaches the same tokens. One batched prefill, then one decode step per token for
/// all live sequences. The LM head runs only on each sequence's last position, and tokens are
/// picked by <see cref="VocabParallelSampler"/> without gathering the vocabulary (or, with
/// <see cref="GatherLogits"/>, from gathered logits). Each step runs through <see cref="StepExecutor"/>, as the
/// server's batcher's do.
/// </summary>
public sealed class Generator
{
    private readonly DecoderModel _model;
    private readonly HashSet<int> _eos;
    private readonly int _samplable;

    /// <summary>Gather full logits and sample on them instead of the vocab-parallel reduction.</summary>
    public bool GatherLogits { get; init; }

    /// <summary>
    /// With <see cref="GatherLogits"/>: gather the logits to rank 0 only (half an all-gather's
    /// traffic), sample there, and broadcast the tokens (logprobs, if asked for, are on rank 0's
    /// results only). Needs the column-parallel head.
    /// </summary>
    public bool GatherToRoot { get; init; }

    /// <summary>Called (on every rank) with (sequence index, token, logprobs) as tokens are picked.</summary>
    public Action<int, int, TokenLogprobs?>? OnToken { get; init; }

    /// <summary>
    /// Polled once per step on rank 0 only; its answer is broadcast so every rank stops at the
    /// same step. Null: never cancelled (and no broadcast).
    /// </summary>
    public Func<bool>? IsCancelled { get; init; }

    /// <summary>
    /// Every id's bytes (null for ids that are not text), e.g. <c>HfTokenizer.TextTokenBytes</c>; needed
    /// for requests in <see cref="ResponseFormat.JsonObject"/>.
    /// </summary>
    public IReadOnlyList<byte[]?>? TokenBytes { get; init; }

    /// <summary>Timings of the last <see cref="Generate"/>: the prefill step (every prompt, and its first token) and the decode steps after it.</summary>
    public GenerationStats LastStats { get; private set; }

    /// <summary>Creates a generator; ids at or above <paramref name="samplableVocab"/> (e.g. past the tokenizer) are never picked.</summary>
    public Generator(DecoderModel model, int samplableVocab, IEnumerable<int> eosIds)
    {
        _model = model;
        _samplable = Math.Min(samplableVocab, model.Config.VocabSize);
        _eos = [.. eosIds];
    }

    /// <summary>Runs every request to completion.</summary>
    public GenerationResult[] Generate(IReadOnlyList<GenerationRequest> requests)
    {
        int B = requests.Count, ctx = _model.MaxContext;
        if (B < 1) throw new TpLlmException("no prompts to generate from");
        if (B > _model.Cache.Slots) throw new TpLlmException($"{B} prompts but the model was loaded for at most {_model.Cache.Slots} sequences at once");
        for (int i = 0; i < B; i++)
        {
            try
            {
                requests[i].Validate(ctx, _model.Config.VocabSize);
            }
            catch (InvalidRequestException e) when (B > 1)
            {
                throw e.For($"prompt {i}");
            }
            if (requests[i].PromptLogprobs is not null) throw new TpLlmException($"prompt {i}: prompt logprobs are computed by ContinuousBatcher (tpllm serve), not by Generator");
        }
        var executor = _executor ??= new StepExecutor(_model, _samplable, _eos, TokenBytes is { } bytes ? () => bytes : null,
            !GatherLogits && _model.Head is IVocabParallelHead ? SamplingPath.VocabParallel : GatherToRoot ? SamplingPath.GatheredToRoot : SamplingPath.Gathered);
        var outputs = requests.Select(r => new List<int>(Math.Min(r.MaxNewTokens, ctx))).ToArray();
        var logprobs = requests.Select(r => r.WantLogprobs || r.TopLogprobs > 0 ? new List<TokenLogprobs>() : null).ToArray();
        var reasons = new FinishReason?[B];
        // every rank draws the same random numbers: rank 0's seeds (a process that picked its own, e.g. from its clock, would
        // otherwise sample a different token)
        var seeds = requests.Select(r => r.Sampling.Seed).ToArray();
        if (_model.Comm.Size > 1) _model.Comm.Broadcast<ulong>(seeds, 0);
        for (int i = 0; i < B; i++)
            executor.Begin(i, requests[i].Sequence with { Sampling = requests[i].Sampling with { Seed = seeds[i] } }, logprobs[i] is null ? -1 : requests[i].TopLogprobs);
        var positions = requests.Select(r => r.PromptIds.Length).ToArray();
        var stop = new int[1];
        // per-step buffers, made once: live sequence indices (= their slots), their chunks, the picked tokens
        var live = Enumerable.Range(0, B).ToArray();
        var chunks = new SequenceChunk[B];
        var picked = new int[B];
        var step = new int[B];
        var prompt = requests.SelectMany(r => r.PromptIds).ToArray();
        for (int i = 0; i < B; i++) chunks[i] = new SequenceChunk(i, 0, requests[i].PromptIds.Length);
        ReadOnlySpan<int> tokens = prompt; // prefill: every prompt in one forward pass
        int n = B;
        long start = System.Diagnostics.Stopwatch.GetTimestamp(), prefillEnd = 0;
        while (n > 0)
        {
            bool wantLogprobs = false;
            for (int j = 0; j < n; j++) wantLogprobs |= logprobs[live[j]] is not null;
            var lps = executor.Run(tokens, chunks.AsSpan(0, n), n, wantLogprobs, picked);
            for (int j = 0; j < n; j++)
            {
                int i = live[j], tok = picked[j];
                outputs[i].Add(tok);
                var lp = lps?[j];
                if (lp is not null) logprobs[i]!.Add(lp);
                OnToken?.Invoke(i, tok, lp);
                reasons[i] = requests[i].FinishAfter(tok, outputs[i].Count, positions[i], ctx, _eos);
            }
            if (IsCancelled is not null)
            {
                stop[0] = _model.Comm.Rank == 0 && IsCancelled() ? 1 : 0;
                _model.Comm.Broadcast<int>(stop, 0);
                if (stop[0] == 1)
                    for (int j = 0; j < n; j++) reasons[live[j]] ??= FinishReason.Cancelled;
            }
            if (prefillEnd == 0) prefillEnd = System.Diagnostics.Stopwatch.GetTimestamp();
            // next step: one token for each sequence still running (compacted in place)
            int m = 0;
            for (int j = 0; j < n; j++)
            {
                int i = live[j];
                if (reasons[i] is not null) continue;
                live[m] = i;
                step[m] = picked[j];
                chunks[m] = new SequenceChunk(i, positions[i], 1);
                positions[i]++;
                m++;
            }
            n = m;
            tokens = step.AsSpan(0, m);
        }
        for (int i = 0; i < B; i++) _model.Cache.SetLength(i, 0);
        LastStats = new GenerationStats(prompt.Length, System.Diagnostics.Stopwatch.GetElapsedTime(start, prefillEnd),
            outputs.Sum(o => o.Count) - B, System.Diagnostics.Stopwatch.GetElapsedTime(prefillEnd));
        return Enumerable.Range(0, B).Select(i => new GenerationResult(outputs[i].ToArray(), reasons[i]!.Value, logprobs[i]?.ToArray())).ToArray();
    }

    private StepExecutor? _executor;
}
