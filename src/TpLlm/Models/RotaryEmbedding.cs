namespace TpLlm.Models;

/// <summary>
/// Rotary position embedding in the Hugging Face layout (rotate_half: element i pairs with
/// i + d/2). Cos/sin tables <c>[maxPos, d/2]</c> are computed once in double precision.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _cos, _sin;
    private readonly int _half;

    /// <summary>Positions the tables cover.</summary>
    public int MaxPositions { get; }

    /// <summary>Builds tables for <paramref name="maxPositions"/> positions.</summary>
    public RotaryEmbedding(RopeParameters rope, int headDim, int maxPositions)
    {
        _half = headDim / 2;
        MaxPositions = maxPositions;
        var inv = rope.InverseFrequencies(headDim);
        _cos = new float[maxPositions * _half];
        _sin = new float[maxPositions * _half];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < _half; i++)
            {
                double a = p * inv[i];
                _cos[p * _half + i] = (float)Math.Cos(a);
                _sin[p * _half + i] = (float)Math.Sin(a);
            }
    }

    /// <summary>Rotates <paramref name="heads"/> consecutive heads of <c>[heads, d]</c> in <paramref name="x"/> for position <paramref name="pos"/>.</summary>
    public void Apply(Span<float> x, int heads, int pos)
    {
        var cos = _cos.AsSpan(pos * _half, _half);
        var sin = _sin.AsSpan(pos * _half, _half);
        for (int h = 0; h < heads; h++)
        {
            var v = x.Slice(h * 2 * _half, 2 * _half);
            for (int i = 0; i < _half; i++)
            {
                float a = v[i], b = v[i + _half];
                v[i] = a * cos[i] - b * sin[i];
                v[i + _half] = b * cos[i] + a * sin[i];
            }
        }
    }
}
