namespace TpLlm.Sampling.Processors;

/// <summary>
/// vLLM's repetition penalty, over the prompt's and the output's ids, then the frequency and presence penalties, over the
/// output's: every rank counts the picked tokens it owns and changes only its own columns.
/// </summary>
public sealed class PenaltiesProcessor : ILogitsProcessor
{
    private readonly VocabSlice _slice;
    private readonly SamplingParams?[] _params;       // per slot: null when it has no penalty
    private readonly Dictionary<int, int>[] _output;  // per slot: owned column → times in the output
    private readonly HashSet<int>[] _prompt;          // per slot: owned columns in the prompt (repetition penalty only)
    private readonly int _context;
    private readonly SavedLogits _saved = new();
    private readonly int[] _reserve;

    /// <summary>
    /// For up to <paramref name="slots"/> sequences over <paramref name="slice"/>; each slot's counts are sized for
    /// <paramref name="context"/> tokens up front, so counting a token never allocates.
    /// </summary>
    public PenaltiesProcessor(VocabSlice slice, int slots, int context)
    {
        _slice = slice;
        _context = context;
        _params = new SamplingParams?[slots];
        _output = new Dictionary<int, int>[slots];
        _prompt = new HashSet<int>[slots];
        for (int s = 0; s < slots; s++) { _output[s] = new(Math.Min(context, Math.Max(slice.Count, 1))); _prompt[s] = []; }
        _reserve = new int[slots];
    }

    /// <inheritdoc />
    public void Begin(int slot, SequenceSpec sequence)
    {
        var p = sequence.Sampling;
        _params[slot] = p.PresencePenalty != 0 || p.FrequencyPenalty != 0 || p.RepetitionPenalty != 1 ? p : null;
        _output[slot].Clear();
        _prompt[slot].Clear();
        if (p.RepetitionPenalty != 1)
            foreach (int id in sequence.Prompt)
                if (_slice.Owns(id, out int c)) _prompt[slot].Add(c);
        _reserve[slot] = _params[slot] is null ? 0 : _prompt[slot].Count + _context; // every logit Apply may change
        _saved.Reserve(_reserve.Sum());
    }

    /// <inheritdoc />
    public bool IsActive(int slot) => _params[slot] is not null;

    /// <inheritdoc />
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        for (int b = 0; b < rows; b++)
        {
            int s = rowSlots[b];
            if (_params[s] is not { } p) continue;
            var output = _output[s];
            var prompt = _prompt[s];
            foreach (int c in prompt) Penalize(logits, b * _slice.Stride + c, output.GetValueOrDefault(c), p);
            foreach (var (c, n) in output)
                if (!prompt.Contains(c)) Penalize(logits, b * _slice.Stride + c, n, p);
        }
    }

    /// <inheritdoc />
    public void Restore(Span<float> logits) => _saved.Restore(logits);

    /// <inheritdoc />
    public void Record(int slot, int token)
    {
        if (_params[slot] is null || !_slice.Owns(token, out int c)) return;
        ref int n = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_output[slot], c, out _);
        n++;
    }

    private void Penalize(Span<float> logits, int index, int timesInOutput, SamplingParams p)
    {
        ref float v = ref _saved.Save(logits, index);
        if (p.RepetitionPenalty != 1) v = v > 0 ? v / p.RepetitionPenalty : v * p.RepetitionPenalty;
        if (timesInOutput > 0) v -= p.FrequencyPenalty * timesInOutput + p.PresencePenalty;
    }
}
