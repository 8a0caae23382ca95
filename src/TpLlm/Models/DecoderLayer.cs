using System.Numerics.Tensors;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// One pre-norm decoder layer: <c>x += attn(norm(x)); x += mlp(norm(x))</c>, or with the sandwich norms of Gemma
/// <c>x += norm(attn(norm(x))); x += norm(mlp(norm(x)))</c>.
/// </summary>
public sealed class DecoderLayer
{
    private readonly float[] _inputNorm, _preMlpNorm;
    private readonly float[]? _postAttentionNorm, _postMlpNorm;
    private readonly float _eps;
    private float[] _h = [], _o = [];

    /// <summary>Attention block.</summary>
    public SelfAttention Attention { get; }

    /// <summary>MLP block.</summary>
    public GatedMlp Mlp { get; }

    /// <summary>
    /// Assembles a layer from its blocks and norm weights (as multiplied: <c>1 + w</c> already added for that form);
    /// <paramref name="postAttentionNorm"/> and <paramref name="postMlpNorm"/> only for families with sandwich norms.
    /// </summary>
    public DecoderLayer(SelfAttention attention, GatedMlp mlp, float[] inputNorm, float[] preMlpNorm, float eps,
        float[]? postAttentionNorm = null, float[]? postMlpNorm = null)
    {
        Attention = attention;
        Mlp = mlp;
        _inputNorm = inputNorm;
        _preMlpNorm = preMlpNorm;
        _postAttentionNorm = postAttentionNorm;
        _postMlpNorm = postMlpNorm;
        _eps = eps;
    }

    /// <summary>Updates the residual stream <paramref name="x"/> <c>[T, H]</c> in place.</summary>
    public void Forward(MatMul mm, Span<float> x, ReadOnlySpan<SequenceChunk> chunks, int T, KvCache cache, int layer)
    {
        int n = T * _inputNorm.Length;
        ColumnParallelLinear.Grow(ref _h, n);
        ColumnParallelLinear.Grow(ref _o, n);
        RmsNorm.Apply(x, _inputNorm, _eps, T, _h);
        Attention.Forward(mm, _h.AsSpan(0, n), chunks, T, cache, layer, _o);
        if (_postAttentionNorm is not null) RmsNorm.Apply(_o, _postAttentionNorm, _eps, T, _o);
        TensorPrimitives.Add(x[..n], _o.AsSpan(0, n), x[..n]);
        RmsNorm.Apply(x, _preMlpNorm, _eps, T, _h);
        Mlp.Forward(mm, _h.AsSpan(0, n), T, _o);
        if (_postMlpNorm is not null) RmsNorm.Apply(_o, _postMlpNorm, _eps, T, _o);
        TensorPrimitives.Add(x[..n], _o.AsSpan(0, n), x[..n]);
    }
}
