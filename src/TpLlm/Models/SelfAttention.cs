using System.Numerics.Tensors;
using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// Grouped-query self-attention of one rank: fused q/k/v column-parallel projection of the rank's heads, optional
/// per-head q/k RMSNorm (Qwen3, Gemma 3; the norm weights replicated on every rank), rotary embedding, causal attention
/// over the KV cache — every earlier position, or a sliding window kept in a ring — and the row-parallel o_proj whose
/// all-reduce completes the layer.
/// </summary>
public sealed class SelfAttention
{
    private readonly ColumnParallelLinear _qkv;  // W [ (nq + 2·nkv)·d, H ]
    private readonly RowParallelLinear _o;       // W [ H, nq·d ]
    private readonly RotaryEmbedding _rope;
    private readonly float[]? _qNorm, _kNorm;     // [d] each, the norm form already folded in
    private readonly float _normEps;
    private readonly int _window;                 // sliding window, or 0
    private readonly int _nq, _nkv, _d, _group, _kvOffset; // _kvOffset: global kv head of local kv 0 relative to heads
    private readonly int _headStart;
    private readonly int _width, _qWidth, _kvWidth; // row widths: q/k/v output (nq + 2·nkv)·d, queries nq·d, keys or values nkv·d
    private readonly float _scale;
    private float[] _qkvOut = [];  // [T, (nq + 2·nkv)·d]
    private float[] _attn = [];    // [T, nq·d]
    private float[][] _scores = []; // per compute thread: [query heads per KV head, positions held]
    private readonly int _groupLocal; // most query heads of this rank that share one KV head
    // the step being attended, for _attend (a delegate made once, so a step allocates nothing)
    private readonly Action<int, int> _attend;
    private int[] _tokenSlot = [], _tokenPos = [], _tokenLast = []; // [T]: each token's slot, position, and its chunk's last position
    private int _tokens;
    private KvCache? _cache;
    private int _layer;

    /// <summary>The fused q/k/v projection.</summary>
    public ColumnParallelLinear Qkv => _qkv;

    /// <summary>The output projection.</summary>
    public RowParallelLinear O => _o;

    /// <summary>
    /// Builds the attention of one rank from its loaded weights: <paramref name="layer"/>'s window and
    /// <paramref name="rope"/>; <paramref name="qNorm"/>/<paramref name="kNorm"/> <c>[head_dim]</c> when the family norms
    /// queries and keys (weights as multiplied, <c>1 + w</c> already added for that form).
    /// </summary>
    public SelfAttention(ModelConfig c, ShardPlan plan, ColumnParallelLinear qkv, RowParallelLinear o, RotaryEmbedding rope,
        LayerAttention layer = default, float[]? qNorm = null, float[]? kNorm = null)
    {
        _qkv = qkv;
        _o = o;
        _rope = rope;
        _qNorm = qNorm;
        _kNorm = kNorm;
        _normEps = (float)c.RmsNormEps;
        _window = layer.SlidingWindow;
        _nq = plan.HeadCount;
        _nkv = plan.KvHeadCount;
        _d = c.HeadDim;
        _group = c.NumHeads / c.NumKvHeads;
        _headStart = plan.HeadStart;
        _kvOffset = plan.KvHeadStart;
        _scale = (float)c.AttentionScale;
        (_width, _qWidth, _kvWidth) = ((_nq + 2 * _nkv) * _d, _nq * _d, _nkv * _d);
        for (int kv = 0; kv < _nkv; kv++) _groupLocal = Math.Max(_groupLocal, LocalHeads(kv).Count);
        _attend = Attend;
    }

    /// <summary>
    /// <paramref name="x"/> <c>[T, H]</c> (normalized) → <paramref name="output"/> <c>[T, H]</c>
    /// (reduced across ranks); caches this step's keys and values of layer <paramref name="layer"/>.
    /// </summary>
    public void Forward(MatMul mm, ReadOnlySpan<float> x, ReadOnlySpan<SequenceChunk> chunks, int T, KvCache cache, int layer, Span<float> output)
    {
        int width = _width, qWidth = _qWidth, kvWidth = _kvWidth, cap = cache.Capacity(layer);
        ColumnParallelLinear.Grow(ref _qkvOut, T * width);
        ColumnParallelLinear.Grow(ref _attn, T * qWidth);
        if (_scores.Length != mm.Threads || _scores[0].Length < _groupLocal * cap)
        {
            _scores = new float[mm.Threads][]; // a loop, not a lambda: a closure over `cache` would be allocated on every call
            for (int i = 0; i < _scores.Length; i++) _scores[i] = new float[_groupLocal * cap];
        }
        if (_tokenSlot.Length < T) (_tokenSlot, _tokenPos, _tokenLast) = (new int[T], new int[T], new int[T]);
        _qkv.Forward(mm, x, T, _qkvOut);
        int t = 0;
        foreach (var ch in chunks)
        {
            for (int i = 0; i < ch.Length; i++)
            {
                int pos = ch.Start + i, row = (pos % cap) * _d;
                (_tokenSlot[t + i], _tokenPos[t + i], _tokenLast[t + i]) = (ch.Slot, pos, ch.Start + ch.Length - 1);
                var r = _qkvOut.AsSpan((t + i) * width, width);
                if (_qNorm is not null) RmsNorm.Apply(r[..qWidth], _qNorm, _normEps, _nq, r[..qWidth]); // each head over its d values
                if (_kNorm is not null) RmsNorm.Apply(r.Slice(qWidth, kvWidth), _kNorm, _normEps, _nkv, r.Slice(qWidth, kvWidth));
                _rope.Apply(r[..qWidth], _nq, pos);
                _rope.Apply(r.Slice(qWidth, kvWidth), _nkv, pos);
                for (int kv = 0; kv < _nkv; kv++)
                {
                    r.Slice(qWidth + kv * _d, _d).CopyTo(cache.Keys(layer, ch.Slot, kv).Slice(row, _d));
                    r.Slice(qWidth + kvWidth + kv * _d, _d).CopyTo(cache.Values(layer, ch.Slot, kv).Slice(row, _d));
                }
            }
            t += ch.Length;
        }
        // every chunk's keys are cached: attend, (token, KV head) pairs split over the rank's compute threads
        (_cache, _layer, _tokens) = (cache, layer, T);
        try { mm.Parallel(_attend); }
        finally { _cache = null; }
        _o.Forward(mm, _attn, T, output);
    }

    // this thread's (token, KV head) pairs of the step: causal softmax(q·kᵀ·scale)·v over the cached positions, for the
    // query heads that share the KV head together, so each cached key and value is read once for all of them
    private void Attend(int part, int parts)
    {
        var cache = _cache!;
        int cap = cache.Capacity(_layer);
        // every parts-th pair, not a contiguous range: later tokens attend over more positions, so this keeps the
        // threads' shares even
        for (int item = part; item < _tokens * _nkv; item += parts)
        {
            int t = item / _nkv, kv = item % _nkv;
            var (hs, g) = LocalHeads(kv);
            if (g == 0) continue;
            int pos = _tokenPos[t], last = _tokenLast[t];
            // a global layer reads positions 0..pos; a ring, its rows 0..n−1, row i holding the latest position ≡ i
            // (mod cap) written so far — masked below when it lies past the query or outside its window
            bool ring = cap < cache.MaxPositions;
            int n = ring ? Math.Min(last + 1, cap) : pos + 1;
            var scores = _scores[part].AsSpan(0, g * n); // [g, n]
            AttentionMath.Scores(_qkvOut.AsSpan(t * _width + hs * _d, g * _d), g, cache.Keys(_layer, _tokenSlot[t], kv), _d, 0, _scale, scores);
            for (int h = 0; h < g; h++)
            {
                var row = scores.Slice(h * n, n);
                if (_window > 0) Mask(row, pos, last, cap);
                TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                TensorPrimitives.Exp(row, row);
                TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
            }
            AttentionMath.WeightedSum(scores, g, cache.Values(_layer, _tokenSlot[t], kv), _d, 0, _attn.AsSpan(t * _qWidth + hs * _d, g * _d));
        }
    }

    // −∞ for the rows the query at `pos` must not see: a position after it (written by a later token of its chunk), or
    // one `window` or more before it
    private void Mask(Span<float> row, int pos, int last, int cap)
    {
        for (int i = 0; i < row.Length; i++)
        {
            int p = last - ((last - i) % cap + cap) % cap;
            if (p > pos || pos - p >= _window) row[i] = float.NegativeInfinity;
        }
    }

    // the rank's query heads [Start, Start + Count) that read local KV head kv
    private (int Start, int Count) LocalHeads(int kv)
    {
        int first = (kv + _kvOffset) * _group - _headStart;
        int start = Math.Clamp(first, 0, _nq), end = Math.Clamp(first + _group, 0, _nq);
        return (start, end - start);
    }
}
