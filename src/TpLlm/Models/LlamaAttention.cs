using System.Numerics.Tensors;
using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// Grouped-query self-attention of one rank: fused q/k/v column-parallel projection of the
/// rank's heads, rotary embedding, causal attention over the KV cache, and the row-parallel
/// o_proj whose all-reduce completes the layer.
/// </summary>
public sealed class LlamaAttention
{
    private readonly ColumnParallelLinear _qkv;  // W [ (nq + 2·nkv)·d, H ]
    private readonly RowParallelLinear _o;       // W [ H, nq·d ]
    private readonly RotaryEmbedding _rope;
    private readonly int _nq, _nkv, _d, _group, _kvOffset; // _kvOffset: global kv head of local kv 0 relative to heads
    private readonly int _headStart;
    private readonly int _width, _qWidth, _kvWidth; // row widths: q/k/v output (nq + 2·nkv)·d, queries nq·d, keys or values nkv·d
    private readonly float _scale;
    private float[] _qkvOut = [];  // [T, (nq + 2·nkv)·d]
    private float[] _attn = [];    // [T, nq·d]
    private float[][] _scores = []; // per compute thread: [query heads per KV head, maxPos]
    private readonly int _groupLocal; // most query heads of this rank that share one KV head
    // the step being attended, for _attend (a delegate made once, so a step allocates nothing)
    private readonly Action<int, int> _attend;
    private int[] _tokenSlot = [], _tokenPos = []; // [T]: each token's sequence slot and position
    private int _tokens;
    private KvCache? _cache;
    private int _layer;

    /// <summary>The fused q/k/v projection.</summary>
    public ColumnParallelLinear Qkv => _qkv;

    /// <summary>The output projection.</summary>
    public RowParallelLinear O => _o;

    /// <summary>Builds the attention of one rank from its loaded weights.</summary>
    public LlamaAttention(ModelConfig c, ShardPlan plan, ColumnParallelLinear qkv, RowParallelLinear o, RotaryEmbedding rope)
    {
        _qkv = qkv;
        _o = o;
        _rope = rope;
        _nq = plan.HeadCount;
        _nkv = plan.KvHeadCount;
        _d = c.HeadDim;
        _group = c.NumHeads / c.NumKvHeads;
        _headStart = plan.HeadStart;
        _kvOffset = plan.KvHeadStart;
        _scale = 1f / MathF.Sqrt(_d);
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
        int width = _width, qWidth = _qWidth, kvWidth = _kvWidth;
        ColumnParallelLinear.Grow(ref _qkvOut, T * width);
        ColumnParallelLinear.Grow(ref _attn, T * qWidth);
        if (_scores.Length != mm.Threads || _scores[0].Length < _groupLocal * cache.MaxPositions)
        {
            _scores = new float[mm.Threads][]; // a loop, not a lambda: a closure over `cache` would be allocated on every call
            for (int i = 0; i < _scores.Length; i++) _scores[i] = new float[_groupLocal * cache.MaxPositions];
        }
        if (_tokenSlot.Length < T) (_tokenSlot, _tokenPos) = (new int[T], new int[T]);
        _qkv.Forward(mm, x, T, _qkvOut);
        int t = 0;
        foreach (var ch in chunks)
        {
            for (int i = 0; i < ch.Length; i++)
            {
                int pos = ch.Start + i;
                (_tokenSlot[t + i], _tokenPos[t + i]) = (ch.Slot, pos);
                var row = _qkvOut.AsSpan((t + i) * width, width);
                _rope.Apply(row[..qWidth], _nq, pos);
                _rope.Apply(row.Slice(qWidth, kvWidth), _nkv, pos);
                for (int kv = 0; kv < _nkv; kv++)
                {
                    row.Slice(qWidth + kv * _d, _d).CopyTo(cache.Keys(layer, ch.Slot, kv).Slice(pos * _d, _d));
                    row.Slice(qWidth + kvWidth + kv * _d, _d).CopyTo(cache.Values(layer, ch.Slot, kv).Slice(pos * _d, _d));
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
        // every parts-th pair, not a contiguous range: later tokens attend over more positions, so this keeps the
        // threads' shares even
        for (int item = part; item < _tokens * _nkv; item += parts)
        {
            int t = item / _nkv, kv = item % _nkv;
            var (hs, g) = LocalHeads(kv);
            if (g == 0) continue;
            int n = _tokenPos[t] + 1;
            var scores = _scores[part].AsSpan(0, g * n); // [g, n]
            AttentionMath.Scores(_qkvOut.AsSpan(t * _width + hs * _d, g * _d), g, cache.Keys(_layer, _tokenSlot[t], kv), _d, 0, _scale, scores);
            for (int h = 0; h < g; h++)
            {
                var row = scores.Slice(h * n, n);
                TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                TensorPrimitives.Exp(row, row);
                TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
            }
            AttentionMath.WeightedSum(scores, g, cache.Values(_layer, _tokenSlot[t], kv), _d, 0, _attn.AsSpan(t * _qWidth + hs * _d, g * _d));
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
