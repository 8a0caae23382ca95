namespace TpLlm.Tensors;

/// <summary>
/// Reorders activations so bf16 kernels can widen weights with a shift and a mask:
/// a 32-bit load of two bf16 holds element 2j in its low half (<c>u &lt;&lt; 16</c>) and
/// element 2j+1 in its high half (<c>u &amp; 0xFFFF0000</c>), so x is split per vector into
/// its even and odd elements. Rows are padded with zeros to the weight stride.
/// </summary>
public static class ActivationPacking
{
    /// <summary>
    /// Packs <paramref name="x"/> <c>[T, K]</c> into <paramref name="packed"/> <c>[T, Kp]</c>.
    /// Per 32-element block: Vector512 → [16 even][16 odd]; Vector256 → twice [8 even][8 odd];
    /// Scalar → unchanged order.
    /// </summary>
    public static void Pack(ReadOnlySpan<float> x, int T, int K, Span<float> packed, int Kp, KernelPath path)
    {
        if (Kp % WeightMatrix.Block != 0 || Kp < K) throw new ArgumentException($"packed width {Kp} must be a multiple of 32 and ≥ K = {K}");
        if (x.Length < T * K || packed.Length < T * Kp) throw new ArgumentException($"buffers too small for [{T}, {K}] → [{T}, {Kp}]");
        int half = path == KernelPath.Vector512 ? 16 : 8;
        for (int t = 0; t < T; t++)
        {
            var src = x.Slice(t * K, K);
            var dst = packed.Slice(t * Kp, Kp);
            if (path == KernelPath.Scalar)
            {
                src.CopyTo(dst);
                dst[K..].Clear();
                continue;
            }
            for (int b = 0; b < Kp; b += 2 * half)
            {
                for (int j = 0; j < half; j++)
                {
                    int e = b + 2 * j, o = e + 1;
                    dst[b + j] = e < K ? src[e] : 0f;
                    dst[b + half + j] = o < K ? src[o] : 0f;
                }
            }
        }
    }
}
