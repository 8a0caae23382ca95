using System.Runtime.CompilerServices;

namespace TpLlm.Tensors.Panels;

/// <summary>Activations rearranged for the register tiles of <see cref="PanelTiles512"/>.</summary>
internal static unsafe class TokenTiles
{
    // x for the 12-, 16-, 8- and 4-token tiles, interleaved so a tile's broadcasts per column sit at fixed offsets from one
    // pointer: [K][width] per tile, tile after tile ([T/12][K][12], or one [K][16] in place of the last 12-token tile and the
    // 4-token tile, then [K][8] and [K][4]). Grows once per thread; pinned, and used from a 64-byte boundary, so a column's
    // broadcasts share as few cache lines as they can.
    [ThreadStatic] private static float[]? _packed;

    /// <summary>
    /// Packs tokens [0, t12) in 12-token tiles except a 16-token tile from <paramref name="t16"/> (if not -1), [t12, t8)
    /// in one 8-token tile, [t8, t4) in one 4-token tile (the tiles <see cref="PanelGemm"/> runs); returns the packed rows.
    /// </summary>
    public static float* Pack(float* x, int K, int t12, int t8, int t4, int t16)
    {
        long need = (long)t4 * K + 16;
        if (_packed is null || _packed.Length < need) _packed = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
        var dst = (float*)(((nint)Unsafe.AsPointer(ref _packed[0]) + 63) & ~(nint)63);
        for (int t0 = 0; t0 < t4;)
        {
            int width = t0 == t16 ? 16 : t0 < t12 ? 12 : t0 < t8 ? 8 : 4;
            float* d = dst + (long)t0 * K;
            for (int t = 0; t < width; t++)
            {
                float* src = x + (long)(t0 + t) * K;
                for (int k = 0; k < K; k++) d[(long)k * width + t] = src[k];
            }
            t0 += width;
        }
        return dst;
    }
}
