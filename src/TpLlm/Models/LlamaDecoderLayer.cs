using System.Numerics.Tensors;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>One pre-norm decoder layer: <c>x += attn(norm(x)); x += mlp(norm(x))</c>.</summary>
public sealed class LlamaDecoderLayer
{
    private readonly float[] _inputNorm, _postNorm;
    private readonly float _eps;
    private float[] _h = [], _o = [];

    /// <summary>Attention block.</summary>
    public LlamaAttention Attention { get; }

    /// <summary>MLP block.</summary>
    public LlamaMlp Mlp { get; }

    /// <summary>Assembles a layer.</summary>
    public LlamaDecoderLayer(LlamaAttention attention, LlamaMlp mlp, float[] inputNorm, float[] postNorm, float eps)
    {
        Attention = attention;
        Mlp = mlp;
        _inputNorm = inputNorm;
        _postNorm = postNorm;
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
        TensorPrimitives.Add(x[..n], _o.AsSpan(0, n), x[..n]);
        RmsNorm.Apply(x, _postNorm, _eps, T, _h);
        Mlp.Forward(mm, _h.AsSpan(0, n), T, _o);
        TensorPrimitives.Add(x[..n], _o.AsSpan(0, n), x[..n]);
    }
}
