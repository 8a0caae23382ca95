namespace TpLlm.Tensors;

/// <summary>A per-thread f32 row for converting one checkpoint row while a matrix is filled (grows once, reused).</summary>
internal static class RowScratch
{
    [ThreadStatic] private static float[]? _row;

    /// <summary>At least <paramref name="n"/> floats, sliced to <paramref name="n"/>.</summary>
    public static Span<float> Get(int n)
    {
        if (_row is null || _row.Length < n) _row = new float[n];
        return _row.AsSpan(0, n);
    }
}
