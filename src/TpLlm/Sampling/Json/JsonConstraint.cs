namespace TpLlm.Sampling.Json;

/// <summary>
/// JSON mode (OpenAI's <c>response_format: {"type": "json_object"}</c>) on one rank's slice of the
/// logits <c>[B, V_pad/tp]</c>, without gathering the vocabulary. For each sequence in JSON mode,
/// every token of the rank's slice whose bytes cannot continue a JSON object is masked to −∞; the
/// ids that end the sequence (end-of-sequence unless ignored, and stop ids) are allowed only once the
/// object is complete and the minimum length reached, and then nothing else is. Every rank sees each
/// picked token and advances the sequence's parse (<see cref="JsonState"/>) with its bytes.
/// <see cref="Restore"/> puts the raw logits back after sampling, so logprobs stay the model's.
/// Built with the whole vocabulary as its slice, it serves gathered rows too.
/// </summary>
public sealed class JsonConstraint : ILogitsProcessor
{
    private readonly IReadOnlyList<byte[]?> _tokenBytes; // every id's bytes; null: not text
    private readonly SortedTokens _sorted;
    private readonly SortedTokens _unsafeInString; // the tokens a string may not simply take in
    private readonly bool[] _safeInString;         // per column: a string takes the token in and stays a string
    private readonly int _start, _count, _stride;
    private readonly int[] _eos;
    private readonly bool[] _on;
    private readonly bool[] _broken;     // a picked token did not parse: only ending is left
    private readonly JsonState[] _state;
    private readonly int[] _toGo;        // tokens still to generate before the sequence may end
    private readonly int[] _endIds;      // how many ids end the sequence, over the whole vocabulary
    private readonly List<int>[] _ends;  // of those, the columns this rank owns
    private readonly HashSet<int>[] _endSet;
    private readonly JsonState[] _walk;  // the parse after each depth of the sorted walk
    private readonly bool[] _allowed;    // per column of the slice
    private readonly int[] _savedRows;
    private float[] _saved = [];         // raw copies of the rows Apply masked
    private int _savedCount;

    /// <summary>
    /// JSON mode for up to <paramref name="slots"/> sequences over the ids <c>[start, start + count)</c>,
    /// held in rows of <paramref name="stride"/> floats; <paramref name="tokenBytes"/> gives every id's
    /// bytes (null for ids that are not text, such as special tokens).
    /// </summary>
    public JsonConstraint(int slots, int start, int count, int stride, IReadOnlyList<byte[]?> tokenBytes, IEnumerable<int> eosIds)
    {
        if (count > stride) throw new TpLlmException($"JSON mode over {count} ids does not fit rows of {stride}");
        _tokenBytes = tokenBytes;
        _start = start;
        _count = Math.Max(count, 0);
        _stride = stride;
        _eos = [.. eosIds];
        _sorted = new SortedTokens(tokenBytes, start, _count);
        _unsafeInString = new SortedTokens(tokenBytes, start, _count, b => !JsonState.IsStringSafe(b));
        _safeInString = new bool[_count];
        foreach (int c in _sorted.Columns) _safeInString[c] = JsonState.IsStringSafe(tokenBytes[start + c]);
        _on = new bool[slots];
        _broken = new bool[slots];
        _state = new JsonState[slots];
        _toGo = new int[slots];
        _endIds = new int[slots];
        _ends = new List<int>[slots];
        _endSet = new HashSet<int>[slots];
        for (int s = 0; s < slots; s++) { _ends[s] = []; _endSet[s] = []; }
        _walk = new JsonState[_sorted.MaxLength + 1];
        _allowed = new bool[_count];
        _savedRows = new int[slots];
    }

    /// <summary>Ids of the slice that are text tokens (the rest are never picked in JSON mode, except to end).</summary>
    public int TextTokens => _sorted.Columns.Length;

    /// <summary>
    /// Starts the sequence in <paramref name="slot"/>: in JSON mode when <paramref name="json"/>, which may
    /// end no sooner than <paramref name="minTokens"/> tokens, by end-of-sequence (unless
    /// <paramref name="ignoreEos"/>) or one of <paramref name="stopTokenIds"/>.
    /// </summary>
    public void Begin(int slot, bool json, int minTokens = 0, bool ignoreEos = false, IReadOnlyList<int>? stopTokenIds = null)
    {
        _on[slot] = json;
        _broken[slot] = false;
        _state[slot] = default;
        _toGo[slot] = minTokens;
        _ends[slot].Clear();
        _endSet[slot].Clear();
        if (!json) return;
        foreach (int id in (ignoreEos ? [] : _eos).Concat(stopTokenIds ?? []))
            if (_endSet[slot].Add(id) && id - _start >= 0 && id - _start < _count) _ends[slot].Add(id - _start);
        _endIds[slot] = _endSet[slot].Count;
        if (_saved.Length < _on.Length * _stride) _saved = new float[_on.Length * _stride]; // once, so that no step allocates
    }

    /// <summary>Starts <paramref name="sequence"/> in <paramref name="slot"/>: in JSON mode when its response format asks for one object.</summary>
    public void Begin(int slot, SequenceSpec sequence) =>
        Begin(slot, sequence.ResponseFormat == ResponseFormat.JsonObject, sequence.Sampling.MinTokens, sequence.IgnoreEos, sequence.StopTokenIds);

    /// <summary>Whether the sequence in <paramref name="slot"/> is in JSON mode.</summary>
    public bool IsOn(int slot) => _on[slot];

    /// <inheritdoc />
    public bool IsActive(int slot) => _on[slot];

    /// <summary>Whether the sequence in <paramref name="slot"/> has completed its JSON object.</summary>
    public bool IsComplete(int slot) => _state[slot].IsComplete;

    /// <summary>Masks row <c>b</c> of <paramref name="logits"/> for the sequence in <c>rowSlots[b]</c>, for the first <paramref name="rows"/> rows.</summary>
    public void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows)
    {
        _savedCount = 0;
        for (int b = 0; b < rows; b++)
        {
            int s = rowSlots[b];
            if (!_on[s]) continue;
            var row = logits.Slice(b * _stride, _stride);
            row.CopyTo(_saved.AsSpan(_savedCount * _stride, _stride));
            _savedRows[_savedCount++] = b;
            Allow(s);
            for (int c = 0; c < _stride; c++)
                if (c >= _count || !_allowed[c]) row[c] = float.NegativeInfinity;
        }
    }

    /// <summary>Puts back the rows <see cref="Apply"/> masked.</summary>
    public void Restore(Span<float> logits)
    {
        for (int k = 0; k < _savedCount; k++)
            _saved.AsSpan(k * _stride, _stride).CopyTo(logits.Slice(_savedRows[k] * _stride, _stride));
        _savedCount = 0;
    }

    /// <summary>Advances the sequence in <paramref name="slot"/> by <paramref name="token"/>, just picked for it.</summary>
    public void Record(int slot, int token)
    {
        if (!_on[slot]) return;
        if (_toGo[slot] > 0) _toGo[slot]--;
        if (_endSet[slot].Contains(token)) return; // the sequence ends here
        if ((uint)token >= (uint)_tokenBytes.Count || _tokenBytes[token] is not { Length: > 0 } bytes || !_state[slot].Feed(bytes))
            _broken[slot] = true; // only a token no rank allowed gets here (a vocabulary that cannot spell JSON)
    }

    // _allowed[c]: may the sequence in slot s continue with the slice's column c?
    private void Allow(int s)
    {
        Array.Clear(_allowed);
        var state = _state[s];
        bool mayEnd = _broken[s] || (state.IsComplete && _toGo[s] == 0);
        if (_broken[s] || (mayEnd && _endIds[s] > 0)) { }
        else if (state.InString)
        {
            // most of a vocabulary can go inside a string: copy those, walk the rest
            _safeInString.CopyTo(_allowed, 0);
            WalkTokens(state, _unsafeInString);
        }
        else WalkTokens(state, _sorted);
        foreach (int c in _ends[s]) _allowed[c] = mayEnd;
    }

    // every text token of the slice, in byte order: feed each only the bytes it does not share with the
    // one before; a prefix that failed fails every token that shares it
    private void WalkTokens(JsonState state, SortedTokens sorted)
    {
        var cols = sorted.Columns;
        var bytes = sorted.Bytes;
        var shared = sorted.SharedPrefix;
        _walk[0] = state;
        int failedAt = int.MaxValue; // the previous token failed at this byte
        for (int i = 0; i < cols.Length; i++)
        {
            int from = shared[i];
            if (from > failedAt) continue;
            failedAt = int.MaxValue;
            var token = bytes[i];
            int d = from;
            for (; d < token.Length; d++)
            {
                _walk[d + 1] = _walk[d];
                if (!_walk[d + 1].Feed(token[d])) { failedAt = d; break; }
            }
            if (d == token.Length) _allowed[cols[i]] = true;
        }
    }
}
