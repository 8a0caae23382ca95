using TpLlm.Parallel;

namespace TpLlm.Sampling;

/// <summary>
/// A minimum length (end-of-sequence and stop token ids banned until it is reached) and logit bias,
/// then repetition, frequency and presence penalties (see <see cref="SamplingParams"/>),
/// on one rank's slice of the logits <c>[B, V_pad/tp]</c>, without gathering the vocabulary: every
/// rank sees every picked token, but keeps counts (and biases) only for the ids it owns, and changes
/// only its own columns. Built with the whole vocabulary as its slice, it serves gathered rows too.
/// <see cref="Restore"/> puts the raw logits back after sampling, so logprobs stay the model's
/// (vLLM's default).
/// </summary>
public sealed class TokenPenalties
{
    private readonly int _start, _count, _stride;
    private readonly SamplingParams?[] _params;
    private readonly Dictionary<int, int>[] _output; // per slot: owned column → times in the output
    private readonly HashSet<int>[] _prompt;         // per slot: owned columns in the prompt (repetition penalty only)
    private readonly List<(int Column, float Bias)>[] _bias; // per slot: owned columns' logit bias
    private readonly List<int>[] _banned;                    // per slot: owned end-of-sequence and stop columns, while _toGo > 0
    private readonly int[] _toGo;                            // per slot: tokens still to generate before they may end it
    private readonly int[] _eos;
    private readonly int[] _saves;                           // per slot: most logits Apply may change for it (sizes _saved)
    private readonly int _context;
    private readonly List<(int Index, float Value)> _saved = [];

    /// <summary>
    /// Penalties over rank <paramref name="rank"/>'s slice of <paramref name="partition"/>: its ids
    /// below <paramref name="samplableVocab"/>, in rows of <c>V_pad/tp</c>.
    /// </summary>
    public static TokenPenalties ForShard(VocabPartition partition, int rank, int samplableVocab, int slots, IEnumerable<int>? eosIds, int context) =>
        new(slots, partition.Start(rank), partition.SamplableRows(rank, samplableVocab), partition.ShardSize, eosIds, context);

    /// <summary>
    /// Penalties for up to <paramref name="slots"/> sequences over the ids
    /// <c>[start, start + count)</c>, held in rows of <paramref name="stride"/> floats;
    /// <paramref name="eosIds"/> are banned until a sequence's minimum length. Each slot's counts are
    /// sized for <paramref name="context"/> tokens up front, so counting a token never allocates.
    /// </summary>
    public TokenPenalties(int slots, int start, int count, int stride, IEnumerable<int>? eosIds = null, int context = 256)
    {
        _eos = [.. eosIds ?? []];
        if (count > stride) throw new TpLlmException($"penalties over {count} ids do not fit rows of {stride}");
        _start = start;
        _count = Math.Max(count, 0);
        _stride = stride;
        _params = new SamplingParams?[slots];
        _output = new Dictionary<int, int>[slots];
        _prompt = new HashSet<int>[slots];
        _bias = new List<(int, float)>[slots];
        _banned = new List<int>[slots];
        _toGo = new int[slots];
        _saves = new int[slots];
        _context = context;
        for (int s = 0; s < slots; s++) { _output[s] = new(Math.Min(context, Math.Max(count, 1))); _prompt[s] = []; _bias[s] = []; _banned[s] = []; }
    }

    /// <summary>
    /// Starts the sequence in <paramref name="slot"/> with its prompt, parameters and stop token ids
    /// (forgetting the slot's last sequence). With <paramref name="ignoreEos"/>, end-of-sequence does
    /// not end it, so the minimum length bans only the stop token ids.
    /// </summary>
    public void Begin(int slot, ReadOnlySpan<int> prompt, SamplingParams p, IReadOnlyList<int>? stopTokenIds = null, bool ignoreEos = false)
    {
        _params[slot] = p.ChangesLogits ? p : null;
        _output[slot].Clear();
        _prompt[slot].Clear();
        _bias[slot].Clear();
        _banned[slot].Clear();
        _toGo[slot] = p.MinTokens;
        foreach (int id in p.MinTokens > 0 ? (ignoreEos ? [] : _eos).Concat(stopTokenIds ?? []).Distinct() : [])
            if (Owned(id, out int c)) _banned[slot].Add(c);
        foreach (var (id, bias) in p.LogitBias ?? new Dictionary<int, float>())
            if (Owned(id, out int c)) _bias[slot].Add((c, bias));
        if (p.RepetitionPenalty != 1)
            foreach (int id in prompt)
                if (Owned(id, out int c)) _prompt[slot].Add(c);
        // room to save every logit Apply may change, made now so that no step allocates
        _saves[slot] = _params[slot] is null ? 0 : _banned[slot].Count + _bias[slot].Count + _prompt[slot].Count + _context;
        _saved.EnsureCapacity(_saves.Sum());
    }

    /// <summary>Counts <paramref name="token"/>, just picked for the sequence in <paramref name="slot"/>.</summary>
    public void Record(int slot, int token)
    {
        if (_params[slot] is null) return;
        if (_toGo[slot] > 0) _toGo[slot]--;
        if (!Owned(token, out int c)) return;
        ref int n = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_output[slot], c, out _);
        n++;
    }

    /// <summary>Penalizes row <c>b</c> of <paramref name="logits"/> for the sequence in <c>rowSlots[b]</c>, for the first <paramref name="rows"/> rows.</summary>
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        _saved.Clear();
        for (int b = 0; b < rows; b++)
        {
            int s = rowSlots[b];
            if (_params[s] is not { } p) continue;
            var row = logits.Slice(b * _stride, _count);
            var output = _output[s];
            var prompt = _prompt[s];
            if (_toGo[s] > 0)
                foreach (int c in _banned[s])
                {
                    _saved.Add((b * _stride + c, row[c]));
                    row[c] = float.NegativeInfinity;
                }
            foreach (var (c, bias) in _bias[s])
            {
                _saved.Add((b * _stride + c, row[c]));
                row[c] += bias;
            }
            foreach (int c in prompt) Penalize(row, b * _stride, c, output.GetValueOrDefault(c), p);
            foreach (var (c, n) in output)
                if (!prompt.Contains(c)) Penalize(row, b * _stride, c, n, p);
        }
    }

    /// <summary>Puts back the logits <see cref="Apply"/> changed (in reverse, so a logit changed twice gets its first, raw value).</summary>
    public void Restore(Span<float> logits)
    {
        for (int k = _saved.Count - 1; k >= 0; k--) logits[_saved[k].Index] = _saved[k].Value;
        _saved.Clear();
    }

    private void Penalize(Span<float> row, int rowOffset, int c, int timesInOutput, SamplingParams p)
    {
        float v = row[c];
        _saved.Add((rowOffset + c, v));
        if (p.RepetitionPenalty != 1) v = v > 0 ? v / p.RepetitionPenalty : v * p.RepetitionPenalty;
        if (timesInOutput > 0) v -= p.FrequencyPenalty * timesInOutput + p.PresencePenalty;
        row[c] = v;
    }

    private bool Owned(int id, out int column)
    {
        column = id - _start;
        return column >= 0 && column < _count;
    }
}
