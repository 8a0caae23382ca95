using TpLlm.Parallel;
using TpLlm.Sampling;
using TpLlm.Sampling.Json;

namespace TpLlm.Models;

/// <summary>
/// Continues several prompts at once on one rank; every rank of the group runs the same loop
/// (SPMD) and reaches the same tokens. One batched prefill, then one decode step per token for
/// all live sequences. The LM head runs only on each sequence's last position, and tokens are
/// picked by <see cref="VocabParallelSampler"/> without gathering the vocabulary (or, with
/// <see cref="GatherLogits"/>, from gathered logits).
/// </summary>
public sealed class Generator
{
    private readonly DecoderModel _model;
    private readonly VocabParallelSampler? _sampler;
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
        if (model.Head is IVocabParallelHead head) _sampler = new VocabParallelSampler(model.Comm, head.Partition, _samplable);
    }

    /// <summary>Runs every request to completion.</summary>
    public GenerationResult[] Generate(IReadOnlyList<GenerationRequest> requests)
    {
        int B = requests.Count, H = _model.Config.HiddenSize, ctx = _model.MaxContext;
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
        var outputs = requests.Select(r => new List<int>(Math.Min(r.MaxNewTokens, ctx))).ToArray();
        var logprobs = requests.Select(r => r.WantLogprobs || r.TopLogprobs > 0 ? new List<TokenLogprobs>() : null).ToArray();
        var reasons = new FinishReason?[B];
        // every rank draws the same random numbers: rank 0's seeds (a process that picked its own, e.g. from its clock, would
        // otherwise sample a different token)
        var seeds = requests.Select(r => r.Sampling.Seed).ToArray();
        if (_model.Comm.Size > 1) _model.Comm.Broadcast<ulong>(seeds, 0);
        var rngs = seeds.Select(s => new SplitMix64(s)).ToArray();
        var positions = requests.Select(r => r.PromptIds.Length).ToArray();
        var stop = new int[1];
        // per-step buffers, made once: live sequence indices, their chunks, params, random streams
        var live = Enumerable.Range(0, B).ToArray();
        var chunks = new SequenceChunk[B];
        var ps = new SamplingParams[B];
        var rs = new SplitMix64[B];
        var hidden = new float[B * H];
        var picked = new int[B];
        var step = new int[B];
        var prompt = requests.SelectMany(r => r.PromptIds).ToArray();
        for (int i = 0; i < B; i++) chunks[i] = new SequenceChunk(i, 0, requests[i].PromptIds.Length);
        var penalties = requests.Any(r => r.Sampling.ChangesLogits) ? NewPenalties(B) : null;
        for (int i = 0; i < B; i++) penalties?.Begin(i, requests[i].PromptIds, requests[i].Sampling, requests[i].StopTokenIds, requests[i].IgnoreEos);
        var json = requests.Any(r => r.ResponseFormat == ResponseFormat.JsonObject) ? NewJsonConstraint(B) : null;
        for (int i = 0; i < B; i++)
            json?.Begin(i, requests[i].ResponseFormat == ResponseFormat.JsonObject, requests[i].Sampling.MinTokens, requests[i].IgnoreEos, requests[i].StopTokenIds);
        ReadOnlySpan<int> tokens = prompt; // prefill: every prompt in one forward pass
        int n = B;
        long start = System.Diagnostics.Stopwatch.GetTimestamp(), prefillEnd = 0;
        while (n > 0)
        {
            _model.Forward(tokens, chunks.AsSpan(0, n), hidden);
            for (int j = 0; j < n; j++) { ps[j] = requests[live[j]].Sampling; rs[j] = rngs[live[j]]; }
            Pick(hidden, n, live, requests, ps, rs, picked, logprobs, penalties, json);
            for (int j = 0; j < n; j++)
            {
                int i = live[j], tok = picked[j];
                outputs[i].Add(tok);
                penalties?.Record(i, tok);
                json?.Record(i, tok);
                OnToken?.Invoke(i, tok, logprobs[i] is { Count: > 0 } lp ? lp[^1] : null);
                if ((!requests[i].IgnoreEos && _eos.Contains(tok)) || requests[i].StopTokenIds.Contains(tok)) reasons[i] = FinishReason.Eos;
                else if (outputs[i].Count >= requests[i].MaxNewTokens) reasons[i] = FinishReason.MaxTokens;
                else if (positions[i] + 1 >= ctx) reasons[i] = FinishReason.ContextFull;
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

    private float[] _local = [], _full = [];

    // penalties over the rows Pick samples from: this rank's vocab slice, or gathered rows
    private TokenPenalties NewPenalties(int slots)
    {
        if (_sampler is not null && !GatherLogits)
        {
            var part = ((IVocabParallelHead)_model.Head).Partition;
            return TokenPenalties.ForShard(part, _model.Comm.Rank, _samplable, slots, _eos, _model.MaxContext);
        }
        return new TokenPenalties(slots, 0, _samplable, _model.Config.VocabSize, _eos, _model.MaxContext);
    }

    // JSON mode over the rows Pick samples from, like the penalties
    private JsonConstraint NewJsonConstraint(int slots)
    {
        var bytes = TokenBytes ?? throw new TpLlmException("JSON output needs the model's tokenizer (tokenizer.json) to know each token's text");
        if (_sampler is not null && !GatherLogits)
        {
            var part = ((IVocabParallelHead)_model.Head).Partition;
            int rank = _model.Comm.Rank;
            return JsonConstraint.ForShard(part, rank, _samplable, slots, bytes, _eos);
        }
        return new JsonConstraint(slots, 0, _samplable, _model.Config.VocabSize, bytes, _eos);
    }

    private void Pick(float[] hidden, int n, int[] live, IReadOnlyList<GenerationRequest> requests, SamplingParams[] ps, SplitMix64[] rs, int[] picked,
        List<TokenLogprobs>?[] logprobs, TokenPenalties? penalties, JsonConstraint? json)
    {
        int topN = 0;
        bool wantLp = false;
        for (int j = 0; j < n; j++)
        {
            topN = Math.Max(topN, requests[live[j]].TopLogprobs);
            wantLp |= logprobs[live[j]] is not null;
        }
        if (_sampler is not null && !GatherLogits)
        {
            var head = (IVocabParallelHead)_model.Head;
            int shard = head.Partition.ShardSize;
            if (_local.Length < n * shard) _local = new float[n * shard];
            head.ForwardLocal(_model.MatMul, hidden, n, _local);
            penalties?.Apply(_local, live, n);
            json?.Apply(_local, live, n);
            _sampler.Sample(_local, n, ps, rs, picked);
            json?.Restore(_local);
            penalties?.Restore(_local); // logprobs are the model's, as in vLLM
            if (wantLp)
            {
                var lp = _sampler.Logprobs(_local, n, picked.AsSpan(0, n), topN);
                for (int j = 0; j < n; j++) logprobs[live[j]]?.Add(lp[j].TakeTop(requests[live[j]].TopLogprobs));
            }
            return;
        }
        int V = _model.Config.VocabSize;
        if (_full.Length < n * V) _full = new float[n * V];
        bool toRoot = GatherToRoot && _model.Head is IVocabParallelHead;
        if (toRoot) ((IVocabParallelHead)_model.Head).ForwardToRoot(_model.MatMul, hidden, n, _full, 0);
        else _model.Head.Forward(_model.MatMul, hidden, n, _full);
        bool sampler = !toRoot || _model.Comm.Rank == 0;
        if (sampler)
        {
            penalties?.Apply(_full, live, n);
            json?.Apply(_full, live, n);
        }
        for (int j = 0; j < n; j++)
        {
            if (!sampler)
            {
                if (!ps[j].IsGreedy) rs[j].NextDouble(); // keep every rank's random stream in step with rank 0's
                continue;
            }
            picked[j] = FullVocabSampler.Sample(_full.AsSpan(j * V, V), _samplable, ps[j], rs[j]);
        }
        if (sampler)
        {
            json?.Restore(_full);
            penalties?.Restore(_full);
        }
        for (int j = 0; j < n && sampler; j++)
        {
            if (logprobs[live[j]] is not { } list) continue;
            var lsm = FullVocabSampler.LogSoftmax(_full.AsSpan(j * V, V), _samplable);
            var top = Enumerable.Range(0, lsm.Length).OrderByDescending(k => lsm[k]).ThenBy(k => k).Take(requests[live[j]].TopLogprobs)
                .Select(k => (k, (float)lsm[k])).ToArray();
            list.Add(new TokenLogprobs(picked[j], (float)lsm[picked[j]], top));
        }
        if (toRoot) _model.Comm.Broadcast<int>(picked.AsSpan(0, n), 0);
    }
}
