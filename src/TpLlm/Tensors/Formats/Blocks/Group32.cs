using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// One group of 32 weights in two 16-lane vectors, for the quantizers: each candidate scale costs a few vector
/// operations instead of 32 scalar ones (quantizing must keep up with loading).
/// </summary>
internal readonly ref struct Group32
{
    private readonly ReadOnlySpan<float> _values;

    /// <summary>Weights 0–15 and 16–31.</summary>
    public readonly Vector512<float> Lo, Hi;

    /// <summary>Loads 32 values.</summary>
    public Group32(ReadOnlySpan<float> group)
    {
        _values = group;
        Lo = Vector512.Create(group[..16]);
        Hi = Vector512.Create(group.Slice(16, 16));
    }

    /// <summary>The largest magnitude.</summary>
    public float Magnitude() => Max(Vector512.MaxNative(Vector512.Abs(Lo), Vector512.Abs(Hi)));

    /// <summary>The value of largest magnitude (the first such, by index), and that magnitude.</summary>
    public (float Value, float Magnitude) Extreme()
    {
        float amax = Magnitude();
        var m = Vector512.Create(amax);
        // the first lane holding it: a compare and a bit scan, not a scan of 32 with a branch each
        ulong at = Vector512.Equals(Vector512.Abs(Lo), m).ExtractMostSignificantBits() | (Vector512.Equals(Vector512.Abs(Hi), m).ExtractMostSignificantBits() << 16);
        return at == 0 ? (0, 0) : (_values[System.Numerics.BitOperations.TrailingZeroCount(at)], amax);
    }

    /// <summary>Levels round(x / d) clamped to [lo, hi], as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (Vector512<float> Lo, Vector512<float> Hi) Levels(float d, float lo, float hi)
    {
        var inv = Vector512.Create(d != 0 ? 1f / d : 0f);
        var l = Vector512.Create(lo);
        var h = Vector512.Create(hi);
        return (Vector512.MinNative(Vector512.MaxNative(Vector512.Round(Lo * inv), l), h), Vector512.MinNative(Vector512.MaxNative(Vector512.Round(Hi * inv), l), h));
    }

    /// <summary>Σ x·q and Σ q² for levels q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public (float Xq, float Qq) Dots((Vector512<float> Lo, Vector512<float> Hi) q) =>
        (Sum(Vector512.FusedMultiplyAdd(Hi, q.Hi, Lo * q.Lo)), Sum(Vector512.FusedMultiplyAdd(q.Hi, q.Hi, q.Lo * q.Lo)));

    /// <summary>Writes levels q into <paramref name="levels"/> (32 values).</summary>
    public static void Store((Vector512<float> Lo, Vector512<float> Hi) q, Span<sbyte> levels)
    {
        // levels are whole numbers within a byte's range: narrowing needs no saturation
        var shorts = Vector512.Narrow(Vector512.ConvertToInt32(q.Lo), Vector512.ConvertToInt32(q.Hi));
        Vector512.Narrow(shorts, shorts).GetLower().CopyTo(levels);
    }

    private static float Max(Vector512<float> v)
    {
        var m = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var n = Vector128.MaxNative(m.GetLower(), m.GetUpper());
        return MathF.Max(MathF.Max(n.ToScalar(), n.GetElement(1)), MathF.Max(n.GetElement(2), n.GetElement(3)));
    }

    private static float Sum(Vector512<float> v)
    {
        var m = v.GetLower() + v.GetUpper();
        return Vector128.Sum(m.GetLower() + m.GetUpper());
    }
}
