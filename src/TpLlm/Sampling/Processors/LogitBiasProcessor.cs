namespace TpLlm.Sampling.Processors;

/// <summary>OpenAI's <c>logit_bias</c>: each biased id's logit gets its bias added, on the rank that owns it.</summary>
public sealed class LogitBiasProcessor : ILogitsProcessor
{
    private readonly VocabSlice _slice;
    private readonly List<(int Column, float Bias)>[] _bias; // per slot: owned columns' bias
    private readonly SavedLogits _saved = new();
    private readonly int[] _reserve;

    /// <summary>For up to <paramref name="slots"/> sequences over <paramref name="slice"/>.</summary>
    public LogitBiasProcessor(VocabSlice slice, int slots)
    {
        _slice = slice;
        _bias = new List<(int, float)>[slots];
        for (int s = 0; s < slots; s++) _bias[s] = [];
        _reserve = new int[slots];
    }

    /// <inheritdoc />
    public void Begin(int slot, SequenceSpec sequence)
    {
        _bias[slot].Clear();
        foreach (var (id, bias) in sequence.Sampling.LogitBias ?? new Dictionary<int, float>())
            if (_slice.Owns(id, out int c)) _bias[slot].Add((c, bias));
        _reserve[slot] = _bias[slot].Count;
        _saved.Reserve(_reserve.Sum());
    }

    /// <inheritdoc />
    public bool IsActive(int slot) => _bias[slot].Count > 0;

    /// <inheritdoc />
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        for (int b = 0; b < rows; b++)
            foreach (var (c, bias) in _bias[rowSlots[b]]) _saved.Save(logits, b * _slice.Stride + c) += bias;
    }

    /// <inheritdoc />
    public void Restore(Span<float> logits) => _saved.Restore(logits);

    /// <inheritdoc />
    public void Record(int slot, int token) { }
}
