using TpLlm.Sampling.Json;
using TpLlm.Sampling.Processors;

namespace TpLlm.Sampling;

/// <summary>
/// Every logits processor a sequence may ask for, in vLLM's order: the structured-output mask (JSON mode) first, then
/// min_tokens, logit bias, and the repetition, frequency and presence penalties; restored in reverse, so each logit gets
/// its raw value back. A processor runs in a step only when some row of the step needs it. JSON mode's token table is
/// built at the first sequence that asks for it.
/// </summary>
public sealed class LogitsProcessors : ILogitsProcessor
{
    private readonly VocabSlice _slice;
    private readonly int _slots;
    private readonly int[] _eos;
    private readonly Func<IReadOnlyList<byte[]?>>? _tokenBytes;
    private readonly ILogitsProcessor?[] _chain; // [JSON (made when first asked for), min_tokens, logit bias, penalties]
    private readonly bool[] _applied;

    /// <summary>
    /// Processors for up to <paramref name="slots"/> sequences over <paramref name="slice"/>, with the model's end-of-sequence
    /// ids and context; <paramref name="tokenBytes"/> gives every id's bytes (null for ids that are not text) for JSON mode, when first asked for.
    /// </summary>
    public LogitsProcessors(VocabSlice slice, int slots, IEnumerable<int> eosIds, int context, Func<IReadOnlyList<byte[]?>>? tokenBytes = null)
    {
        _slice = slice;
        _slots = slots;
        _eos = [.. eosIds];
        _tokenBytes = tokenBytes;
        _chain = [null, new MinTokensProcessor(slice, slots, _eos), new LogitBiasProcessor(slice, slots), new PenaltiesProcessor(slice, slots, context)];
        _applied = new bool[_chain.Length];
    }

    /// <summary>JSON mode's processor, once a sequence has asked for it.</summary>
    public JsonConstraint? Json => (JsonConstraint?)_chain[0];

    /// <inheritdoc />
    public void Begin(int slot, SequenceSpec sequence)
    {
        if (sequence.ResponseFormat == ResponseFormat.JsonObject && _chain[0] is null)
            _chain[0] = new JsonConstraint(_slots, _slice.Start, _slice.Count, _slice.Stride,
                _tokenBytes?.Invoke() ?? throw new TpLlmException("JSON output needs the model's tokenizer (tokenizer.json) to know each token's text"), _eos);
        foreach (var p in _chain) p?.Begin(slot, sequence);
    }

    /// <inheritdoc />
    public bool IsActive(int slot)
    {
        foreach (var p in _chain)
            if (p?.IsActive(slot) == true) return true;
        return false;
    }

    /// <inheritdoc />
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        for (int k = 0; k < _chain.Length; k++)
        {
            var p = _chain[k];
            _applied[k] = false;
            if (p is null) continue;
            for (int b = 0; b < rows && !_applied[k]; b++) _applied[k] = p.IsActive(rowSlots[b]);
            if (_applied[k]) p.Apply(logits, rowSlots, rows);
        }
    }

    /// <inheritdoc />
    public void Restore(Span<float> logits)
    {
        for (int k = _chain.Length - 1; k >= 0; k--)
            if (_applied[k])
            {
                _chain[k]!.Restore(logits);
                _applied[k] = false;
            }
    }

    /// <inheritdoc />
    public void Record(int slot, int token)
    {
        foreach (var p in _chain) p?.Record(slot, token);
    }
}
