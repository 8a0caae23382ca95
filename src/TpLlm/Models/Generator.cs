using TpLlm.Parallel;
using TpLlm.Sampling;

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
    private readonly LlamaModel _model;
    private readonly VocabParallelSampler? _sampler;
    private readonly HashSet<int> _eos;
    private readonly int _samplable;

    /// <summary>Gather full logits and sample on them instead of the vocab-parallel reduction.</summary>
    public bool GatherLogits { get; init; }

    /// <summary>Called (on every rank) with (sequence index, token, logprobs) as tokens are picked.</summary>
    public Action<int, int, TokenLogprobs?>? OnToken { get; init; }

    /// <summary>
    /// Polled once per step on rank 0 only; its answer is broadcast so every rank stops at the
    /// same step. Null: never cancelled (and no broadcast).
    /// </summary>
    public Func<bool>? IsCancelled { get; init; }

    /// <summary>Creates a generator; ids at or above <paramref name="samplableVocab"/> (e.g. past the tokenizer) are never picked.</summary>
    public Generator(LlamaModel model, int samplableVocab, IEnumerable<int> eosIds)
    {
        _model = model;
        _samplable = Math.Min(samplableVocab, model.Config.VocabSize);
        _eos = [.. eosIds];
        if (model.Head is ColumnParallelLmHead head) _sampler = new VocabParallelSampler(model.Comm, head.Partition, _samplable);
    }

    /// <summary>Runs every request to completion.</summary>
    public GenerationResult[] Generate(IReadOnlyList<GenerationRequest> requests)
    {
        int B = requests.Count, H = _model.Config.HiddenSize, ctx = _model.MaxContext;
        if (B < 1) throw new TpLlmException("no prompts to generate from");
        if (B > _model.Cache.Slots) throw new TpLlmException($"{B} prompts but the model was loaded for at most {_model.Cache.Slots} sequences at once");
        for (int i = 0; i < B; i++)
        {
            var r = requests[i];
            r.Sampling.Validate();
            if (r.PromptIds.Length == 0) throw new TpLlmException($"prompt {i} is empty; give at least one token");
            if (r.PromptIds.Length >= ctx) throw new TpLlmException($"prompt {i} has {r.PromptIds.Length} tokens; the context holds {ctx}, so at most {ctx - 1} leave room for one new token");
            if (r.MaxNewTokens < 1) throw new TpLlmException($"--max-new-tokens {r.MaxNewTokens} must be ≥ 1");
            foreach (var id in r.PromptIds)
                if ((uint)id >= (uint)_model.Config.VocabSize) throw new TpLlmException($"token id {id} in prompt {i} is outside the vocabulary [0, {_model.Config.VocabSize})");
        }
        var outputs = requests.Select(_ => new List<int>()).ToArray();
        var logprobs = requests.Select(r => r.WantLogprobs || r.TopLogprobs > 0 ? new List<TokenLogprobs>() : null).ToArray();
        var reasons = new FinishReason?[B];
        var rngs = requests.Select(r => new SplitMix64(r.Sampling.Seed)).ToArray();
        var positions = requests.Select(r => r.PromptIds.Length).ToArray();
        var stop = new int[1];

        // prefill: every prompt in one forward pass
        var live = Enumerable.Range(0, B).ToList();
        var tokens = requests.SelectMany(r => r.PromptIds).ToArray();
        var chunks = new SequenceChunk[B];
        for (int i = 0, s = 0; i < B; s += requests[i].PromptIds.Length, i++) chunks[i] = new SequenceChunk(i, 0, requests[i].PromptIds.Length);
        var hidden = new float[B * H];
        var picked = new int[B];
        var step = new int[B];
        while (true)
        {
            int n = live.Count;
            _model.Forward(tokens, chunks.AsSpan(0, n), hidden);
            Pick(hidden, n, live, requests, rngs, picked, logprobs);
            for (int j = 0; j < n; j++)
            {
                int i = live[j], tok = picked[j];
                outputs[i].Add(tok);
                OnToken?.Invoke(i, tok, logprobs[i]?[^1]);
                if (!requests[i].IgnoreEos && _eos.Contains(tok)) reasons[i] = FinishReason.Eos;
                else if (outputs[i].Count >= requests[i].MaxNewTokens) reasons[i] = FinishReason.MaxTokens;
                else if (positions[i] + 1 >= ctx) reasons[i] = FinishReason.ContextFull;
            }
            if (IsCancelled is not null)
            {
                stop[0] = _model.Comm.Rank == 0 && IsCancelled() ? 1 : 0;
                _model.Comm.Broadcast<int>(stop, 0);
                if (stop[0] == 1)
                    foreach (var i in live) reasons[i] ??= FinishReason.Cancelled;
            }
            // next step: one token for each sequence still running
            int m = 0;
            foreach (var i in live)
            {
                if (reasons[i] is not null) continue;
                step[m] = outputs[i][^1];
                chunks[m] = new SequenceChunk(i, positions[i], 1);
                positions[i]++;
                m++;
            }
            live = live.Where(i => reasons[i] is null).ToList();
            if (live.Count == 0) break;
            tokens = step[..m];
        }
        for (int i = 0; i < B; i++) _model.Cache.SetLength(i, 0);
        return Enumerable.Range(0, B).Select(i => new GenerationResult(outputs[i].ToArray(), reasons[i]!.Value, logprobs[i]?.ToArray())).ToArray();
    }

    private float[] _local = [], _full = [];

    private void Pick(float[] hidden, int n, List<int> live, IReadOnlyList<GenerationRequest> requests, SplitMix64[] rngs, int[] picked,
        List<TokenLogprobs>?[] logprobs)
    {
        var ps = live.Select(i => requests[i].Sampling).ToArray();
        var rs = live.Select(i => rngs[i]).ToArray();
        int topN = live.Max(i => requests[i].TopLogprobs);
        bool wantLp = live.Any(i => logprobs[i] is not null);
        if (_sampler is not null && !GatherLogits)
        {
            var head = (ColumnParallelLmHead)_model.Head;
            int shard = head.Partition.ShardSize;
            if (_local.Length < n * shard) _local = new float[n * shard];
            head.ForwardLocal(_model.MatMul, hidden, n, _local);
            _sampler.Sample(_local, n, ps, rs, picked);
            if (wantLp)
            {
                var lp = _sampler.Logprobs(_local, n, picked.AsSpan(0, n), topN);
                for (int j = 0; j < n; j++) logprobs[live[j]]?.Add(Trim(lp[j], requests[live[j]].TopLogprobs));
            }
            return;
        }
        int V = _model.Config.VocabSize;
        if (_full.Length < n * V) _full = new float[n * V];
        _model.Head.Forward(_model.MatMul, hidden, n, _full);
        for (int j = 0; j < n; j++)
        {
            var row = _full.AsSpan(j * V, V);
            picked[j] = FullVocabSampler.Sample(row, _samplable, ps[j], rs[j]);
            if (logprobs[live[j]] is { } list)
            {
                var lsm = FullVocabSampler.LogSoftmax(row, _samplable);
                var top = Enumerable.Range(0, lsm.Length).OrderByDescending(k => lsm[k]).ThenBy(k => k).Take(requests[live[j]].TopLogprobs)
                    .Select(k => (k, (float)lsm[k])).ToArray();
                list.Add(new TokenLogprobs(picked[j], (float)lsm[picked[j]], top));
            }
        }
    }

    private static TokenLogprobs Trim(TokenLogprobs lp, int n) => lp.Top.Length <= n ? lp : lp with { Top = lp.Top[..n] };
}
