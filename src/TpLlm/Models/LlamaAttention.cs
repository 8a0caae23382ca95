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
    private float[][] _scores = []; // per compute thread: [maxPos]
    // the step being attended, for _attend (a delegate made once, so a step allocates nothing)
    private readonly Action<int, int> _attend;
    private SequenceChunk[] _chunks = [];
    private int _chunkCount;
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
        if (_scores.Length != mm.Threads || _scores[0].Length < cache.MaxPositions)
        {
            _scores = new float[mm.Threads][]; // a loop, not a lambda: a closure over `cache` would be allocated on every call
            for (int i = 0; i < _scores.Length; i++) _scores[i] = new float[cache.MaxPositions];
        }
        _qkv.Forward(mm, x, T, _qkvOut);
        int t = 0;
        foreach (var ch in chunks)
        {
            var keys = cache.Keys(layer, ch.Slot);
            var values = cache.Values(layer, ch.Slot);
            for (int i = 0; i < ch.Length; i++)
            {
                int pos = ch.Start + i;
                var row = _qkvOut.AsSpan((t + i) * width, width);
                _rope.Apply(row[..qWidth], _nq, pos);
                _rope.Apply(row.Slice(qWidth, kvWidth), _nkv, pos);
                row.Slice(qWidth, kvWidth).CopyTo(keys.Slice(pos * kvWidth, kvWidth));
                row.Slice(qWidth + kvWidth, kvWidth).CopyTo(values.Slice(pos * kvWidth, kvWidth));
            }
            t += ch.Length;
        }
        // every chunk's keys are cached: attend, the rank's heads split over its compute threads
        if (_chunks.Length < chunks.Length) _chunks = new SequenceChunk[chunks.Length];
        chunks.CopyTo(_chunks);
        _chunkCount = chunks.Length;
        (_cache, _layer) = (cache, layer);
        try { mm.Parallel(_attend); }
        finally { _cache = null; }
        _o.Forward(mm, _attn, T, output);
    }

    // heads [h0, h1) of every token of the step: causal softmax(q·kᵀ·scale)·v over the cached positions
    private void Attend(int part, int parts)
    {
        var (h0, h1) = ComputePool.Slice(_nq, part, parts, 1);
        int width = _width, qWidth = _qWidth, kvWidth = _kvWidth;
        var cache = _cache!;
        int t = 0;
        for (int c = 0; c < _chunkCount; c++)
        {
            var ch = _chunks[c];
            var keys = cache.Keys(_layer, ch.Slot);
            var values = cache.Values(_layer, ch.Slot);
            for (int i = 0; i < ch.Length; i++)
            {
                int n = ch.Start + i + 1;
                var q = _qkvOut.AsSpan((t + i) * width, qWidth);
                var outRow = _attn.AsSpan((t + i) * qWidth, qWidth);
                var scores = _scores[part].AsSpan(0, n);
                for (int h = h0; h < h1; h++)
                {
                    int kv = (_headStart + h) / _group - _kvOffset;
                    AttentionMath.Scores(q.Slice(h * _d, _d), keys, kvWidth, kv * _d, _scale, scores);
                    float max = TensorPrimitives.Max(scores);
                    TensorPrimitives.Subtract(scores, max, scores);
                    TensorPrimitives.Exp(scores, scores);
                    TensorPrimitives.Multiply(scores, 1f / TensorPrimitives.Sum(scores), scores);
                    AttentionMath.WeightedSum(scores, values, kvWidth, kv * _d, outRow.Slice(h * _d, _d));
                }
            }
            t += ch.Length;
        }
    }
}
