namespace TpLlm.Sampling.Processors;

/// <summary>
/// vLLM's <c>min_tokens</c>: until a sequence has generated its minimum, the ids that would end it — end-of-sequence (unless
/// ignored) and its stop ids — are banned (−∞) on the rank that owns them.
/// </summary>
public sealed class MinTokensProcessor : ILogitsProcessor
{
    private readonly VocabSlice _slice;
    private readonly int[] _eos;
    private readonly List<int>[] _banned; // per slot: owned columns that end the sequence
    private readonly int[] _toGo;         // per slot: tokens still to generate before it may end
    private readonly SavedLogits _saved = new();
    private readonly int[] _reserve;

    /// <summary>For up to <paramref name="slots"/> sequences over <paramref name="slice"/>, with the model's end-of-sequence ids.</summary>
    public MinTokensProcessor(VocabSlice slice, int slots, IEnumerable<int> eosIds)
    {
        _slice = slice;
        _eos = [.. eosIds];
        _banned = new List<int>[slots];
        for (int s = 0; s < slots; s++) _banned[s] = [];
        _toGo = new int[slots];
        _reserve = new int[slots];
    }

    /// <inheritdoc />
    public void Begin(int slot, SequenceSpec sequence)
    {
        _toGo[slot] = sequence.Sampling.MinTokens;
        _banned[slot].Clear();
        if (sequence.Sampling.MinTokens > 0)
            foreach (int id in (sequence.IgnoreEos ? [] : _eos).Concat(sequence.StopTokenIds).Distinct())
                if (_slice.Owns(id, out int c)) _banned[slot].Add(c);
        _reserve[slot] = _banned[slot].Count;
        _saved.Reserve(_reserve.Sum());
    }

    /// <inheritdoc />
    public bool IsActive(int slot) => _toGo[slot] > 0 && _banned[slot].Count > 0;

    /// <inheritdoc />
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        for (int b = 0; b < rows; b++)
        {
            int s = rowSlots[b];
            if (!IsActive(s)) continue;
            foreach (int c in _banned[s]) _saved.Save(logits, b * _slice.Stride + c) = float.NegativeInfinity;
        }
    }

    /// <inheritdoc />
    public void Restore(Span<float> logits) => _saved.Restore(logits);

    /// <inheritdoc />
    public void Record(int slot, int token)
    {
        if (_toGo[slot] > 0) _toGo[slot]--; // any token counts toward the minimum, owned or not
    }
}
