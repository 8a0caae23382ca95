using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>
/// One step of generation on one rank; every rank of the group runs the same steps (SPMD) and picks the same tokens. A step
/// is the model's forward pass over its chunks (<c>[T, H]</c>), the LM head over the last position of the rows that sample
/// (<c>[S, V_pad/tp]</c>), the logits processors in vLLM's order, the sampler, the processors restored (logprobs are the
/// model's), the picks recorded, and — when asked — the logprobs and the prompts' scores. Each KV-cache slot's sequence is
/// started with <see cref="Begin"/>. <see cref="Generator"/> and the serving batcher both run their steps through it, so the
/// CLI and the server pick tokens by the same code.
/// </summary>
public sealed class StepExecutor
{
    private readonly DecoderModel _model;
    private readonly IVocabParallelHead? _vocabHead;     // the vocab-parallel path's head
    private readonly VocabParallelSampler? _sampler;
    private readonly PromptScorer? _scorer;
    private readonly SamplingPath _path;
    private readonly int _samplable, _hiddenSize;
    private readonly SamplingParams[] _slotParams;        // per slot
    private readonly SplitMix64[] _slotRng;
    private readonly int[] _slotTop;                      // per slot: top logprobs, −1: none wanted
    private readonly SamplingParams[] _ps;                // per row
    private readonly SplitMix64[] _rs;
    private readonly int[] _rowSlot;
    private readonly float[] _hidden;                     // [B, H]: the last position of each row
    private readonly float[] _logits;                     // [B, V_pad/tp], or [B, V] gathered
    private float[] _allHidden = [];                      // [T, H]: every position, when a prompt is scored

    /// <summary>The processors every sequence's logits go through.</summary>
    public LogitsProcessors Processors { get; }

    /// <summary>
    /// Steps over <paramref name="model"/>'s KV-cache slots; ids at or above <paramref name="samplableVocab"/> (past the
    /// tokenizer) are never picked; <paramref name="eosIds"/> end sequences (min_tokens and JSON mode hold them back);
    /// <paramref name="tokenBytes"/> gives every id's bytes for JSON mode, when a sequence first asks for it.
    /// </summary>
    public StepExecutor(DecoderModel model, int samplableVocab, IEnumerable<int> eosIds, Func<IReadOnlyList<byte[]?>>? tokenBytes = null,
        SamplingPath path = SamplingPath.VocabParallel)
    {
        _model = model;
        _samplable = Math.Min(samplableVocab, model.Config.VocabSize);
        _vocabHead = model.Head as IVocabParallelHead;
        if (_vocabHead is null && path != SamplingPath.Gathered)
            throw new TpLlmException($"{path} sampling needs the column-parallel LM head; the {model.Head.Strategy} head gathers its logits (SamplingPath.Gathered)");
        _path = path;
        int B = model.Cache.Slots, V = model.Config.VocabSize;
        _hiddenSize = model.Config.HiddenSize;
        VocabSlice slice;
        if (path == SamplingPath.VocabParallel)
        {
            _sampler = new VocabParallelSampler(model.Comm, _vocabHead!.Partition, _samplable);
            _scorer = new PromptScorer(_vocabHead, _sampler, _hiddenSize);
            slice = VocabSlice.ForShard(_vocabHead.Partition, model.Comm.Rank, _samplable);
        }
        else slice = VocabSlice.Whole(V, _samplable);
        Processors = new LogitsProcessors(slice, B, eosIds, model.MaxContext, tokenBytes);
        _slotParams = new SamplingParams[B];
        _slotRng = new SplitMix64[B];
        _slotTop = new int[B];
        _ps = new SamplingParams[B];
        _rs = new SplitMix64[B];
        _rowSlot = new int[B];
        _hidden = new float[B * _hiddenSize];
        _logits = new float[B * slice.Stride];
    }

    /// <summary>
    /// Starts <paramref name="sequence"/> in <paramref name="slot"/>: its sampling (a random stream from its seed) and its
    /// processors; <paramref name="topLogprobs"/> alternatives are reported with each token (0: the chosen token's only; −1: no logprobs).
    /// </summary>
    public void Begin(int slot, SequenceSpec sequence, int topLogprobs)
    {
        _slotParams[slot] = sequence.Sampling;
        _slotRng[slot] = new SplitMix64(sequence.Sampling.Seed);
        _slotTop[slot] = topLogprobs;
        Processors.Begin(slot, sequence);
    }

    /// <summary>
    /// Runs a step: <paramref name="tokens"/> fed as <paramref name="chunks"/> (row <c>r</c> is <c>chunks[r]</c>, in
    /// order), and a token picked for each of the first <paramref name="sampledRows"/> rows into <paramref name="picked"/>.
    /// With <paramref name="wantLogprobs"/> (the same on every rank), returns each sampled row's logprobs (null for a row
    /// whose sequence wants none; on <see cref="SamplingPath.GatheredToRoot"/>, on rank 0 only); otherwise null. Each
    /// <c>(Row, TopN)</c> of <paramref name="score"/> — a row that feeds its whole prompt — has its prompt scored into
    /// <c>promptLogprobs[Row]</c> (vocab-parallel path only).
    /// </summary>
    public TokenLogprobs?[]? Run(ReadOnlySpan<int> tokens, ReadOnlySpan<SequenceChunk> chunks, int sampledRows, bool wantLogprobs, Span<int> picked,
        IReadOnlyList<(int Row, int TopN)>? score = null, TokenLogprobs?[]?[]? promptLogprobs = null)
    {
        if (score is { Count: > 0 }) ForwardScoring(tokens, chunks, score, promptLogprobs ?? throw new ArgumentNullException(nameof(promptLogprobs)));
        else _model.Forward(tokens, chunks, _hidden);
        int S = sampledRows;
        if (S == 0) return null; // every rank knows S, so all of them skip the collectives below together
        int topN = 0;
        for (int r = 0; r < S; r++)
        {
            int slot = chunks[r].Slot;
            _rowSlot[r] = slot;
            _ps[r] = _slotParams[slot];
            _rs[r] = _slotRng[slot];
            topN = Math.Max(topN, _slotTop[slot]);
        }
        return _path == SamplingPath.VocabParallel ? PickVocabParallel(S, wantLogprobs, topN, picked) : PickGathered(S, wantLogprobs, picked);
    }

    private TokenLogprobs?[]? PickVocabParallel(int S, bool wantLogprobs, int topN, Span<int> picked)
    {
        _vocabHead!.ForwardLocal(_hidden, S, _logits);
        Processors.Apply(_logits, _rowSlot, S); // each processor runs only if a row needs it
        _sampler!.Sample(_logits, S, _ps, _rs, picked);
        Processors.Restore(_logits);
        for (int r = 0; r < S; r++) Processors.Record(_rowSlot[r], picked[r]);
        if (!wantLogprobs) return null;
        var lps = _sampler.Logprobs(_logits, S, picked[..S], topN); // a collective: every rank has the same flag
        var result = new TokenLogprobs?[S];
        for (int r = 0; r < S; r++)
            if (_slotTop[_rowSlot[r]] >= 0) result[r] = lps[r].TakeTop(_slotTop[_rowSlot[r]]);
        return result;
    }

    private TokenLogprobs?[]? PickGathered(int S, bool wantLogprobs, Span<int> picked)
    {
        int V = _model.Config.VocabSize;
        bool toRoot = _path == SamplingPath.GatheredToRoot;
        if (toRoot) _vocabHead!.ForwardToRoot(_hidden, S, _logits, 0);
        else _model.Head.Forward(_hidden, S, _logits);
        bool samples = !toRoot || _model.Comm.Rank == 0;
        TokenLogprobs?[]? result = wantLogprobs && samples ? new TokenLogprobs?[S] : null;
        if (samples)
        {
            Processors.Apply(_logits, _rowSlot, S);
            for (int r = 0; r < S; r++) picked[r] = FullVocabSampler.Sample(_logits.AsSpan(r * V, V), _samplable, _ps[r], _rs[r]);
            Processors.Restore(_logits);
            for (int r = 0; r < S && result is not null; r++)
            {
                int top = _slotTop[_rowSlot[r]];
                if (top < 0) continue;
                var lsm = FullVocabSampler.LogSoftmax(_logits.AsSpan(r * V, V), _samplable);
                var best = Enumerable.Range(0, lsm.Length).OrderByDescending(k => lsm[k]).ThenBy(k => k).Take(top).Select(k => (k, (float)lsm[k])).ToArray();
                result[r] = new TokenLogprobs(picked[r], (float)lsm[picked[r]], best);
            }
        }
        else
            for (int r = 0; r < S; r++)
                if (!_ps[r].IsGreedy) _rs[r].NextDouble(); // keep every rank's random stream in step with rank 0's
        if (toRoot) _model.Comm.Broadcast<int>(picked[..S], 0);
        for (int r = 0; r < S; r++) Processors.Record(_rowSlot[r], picked[r]);
        return result;
    }

    // a step with prompts to score: every position's hidden state, the prompts scored (a collective, in row order on every
    // rank), and each row's last position copied out for sampling
    private void ForwardScoring(ReadOnlySpan<int> tokens, ReadOnlySpan<SequenceChunk> chunks, IReadOnlyList<(int Row, int TopN)> score, TokenLogprobs?[]?[] promptLogprobs)
    {
        if (_scorer is null) throw new TpLlmException("prompt logprobs need the vocab-parallel sampling path");
        int H = _hiddenSize, T = tokens.Length;
        if (_allHidden.Length < T * H) _allHidden = new float[T * H];
        _model.Forward(tokens, chunks, _allHidden, allPositions: true);
        int end = 0, next = 0;
        for (int r = 0; r < chunks.Length; r++)
        {
            int first = end;
            end += chunks[r].Length;
            _allHidden.AsSpan((end - 1) * H, H).CopyTo(_hidden.AsSpan(r * H, H));
            if (next < score.Count && score[next].Row == r)
                promptLogprobs[r] = _scorer.Score(_allHidden.AsSpan(first * H, chunks[r].Length * H), tokens.Slice(first, chunks[r].Length), score[next++].TopN);
        }
    }
}
