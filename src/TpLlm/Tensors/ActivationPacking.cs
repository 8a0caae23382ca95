namespace TpLlm.Tensors;

/// <summary>Copies activations <c>[T, K]</c> into rows of width Kp, zero-padded (for the row-major F32/Int8 kernels).</summary>
public static class ActivationPacking
{
    /// <summary>Packs <paramref name="x"/> <c>[T, K]</c> into <paramref name="packed"/> <c>[T, Kp]</c>.</summary>
    public static void Pad(ReadOnlySpan<float> x, int T, int K, Span<float> packed, int Kp)
    {
        if (Kp < K) throw new ArgumentException($"packed width {Kp} < K = {K}");
        if (x.Length < T * K || packed.Length < T * Kp) throw new ArgumentException($"buffers too small for [{T}, {K}] → [{T}, {Kp}]");
        for (int t = 0; t < T; t++)
        {
            x.Slice(t * K, K).CopyTo(packed.Slice(t * Kp, K));
            packed.Slice(t * Kp + K, Kp - K).Clear();
        }
    }
}
