using System.Runtime.InteropServices;

namespace TpLlm.Checkpoints;

/// <summary>
/// ggml's K-quant super-blocks of 256 weights as f32 (its <c>dequantize_row_q4_K</c>, <c>_q5_K</c>, <c>_q6_K</c>).
/// TpLlm has no kernels for them: a GGUF file's K-quant tensors are widened as they load.
/// </summary>
internal static class KQuants
{
    /// <summary>Dequantizes the whole super-blocks of <paramref name="src"/> into <paramref name="dst"/> (cut at its length).</summary>
    public static void Dequantize(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int bytes = dtype.Size();
        Span<float> block = stackalloc float[256];
        for (int b = 0; b * bytes + bytes <= src.Length && b * 256 < dst.Length; b++)
        {
            var x = src.Slice(b * bytes, bytes);
            switch (dtype)
            {
                case DType.Q4_K or DType.Q5_K: Q45K(x, block, fifthBit: dtype == DType.Q5_K); break;
                default: Q6K(x, block); break;
            }
            int n = Math.Min(256, dst.Length - b * 256);
            block[..n].CopyTo(dst.Slice(b * 256, n));
        }
    }

    private static float Half(ReadOnlySpan<byte> x, int at) => (float)BitConverter.UInt16BitsToHalf(MemoryMarshal.Read<ushort>(x[at..]));

    // 6-bit scale and min j of the 12 packed bytes
    private static (int Scale, int Min) ScaleMin(ReadOnlySpan<byte> q, int j) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // d, dmin, scales[12], (Q5_K: qh[32],) qs[128]: four pairs of 32-weight sub-blocks, the low nibbles then the high
    // nibbles of 32 bytes; Q5_K's fifth bit of pair j is bit 2j (low nibbles) or 2j + 1 (high ones) of qh[l]
    private static void Q45K(ReadOnlySpan<byte> x, Span<float> y, bool fifthBit)
    {
        float d = Half(x, 0), dmin = Half(x, 2);
        var scales = x.Slice(4, 12);
        var qh = fifthBit ? x.Slice(16, 32) : default;
        var qs = x.Slice(fifthBit ? 48 : 16, 128);
        for (int j = 0, o = 0; j < 4; j++, o += 64)
        {
            var (s1, m1) = ScaleMin(scales, 2 * j);
            var (s2, m2) = ScaleMin(scales, 2 * j + 1);
            int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
            var q = qs.Slice(32 * j, 32);
            for (int l = 0; l < 32; l++)
            {
                int hi1 = fifthBit && (qh[l] & u1) != 0 ? 16 : 0, hi2 = fifthBit && (qh[l] & u2) != 0 ? 16 : 0;
                y[o + l] = d * s1 * ((q[l] & 0xF) + hi1) - dmin * m1;
                y[o + 32 + l] = d * s2 * ((q[l] >> 4) + hi2) - dmin * m2;
            }
        }
    }

    // ql[128], qh[64], scales[16] (int8), d: two halves of 128 weights, each four rows of 32 (low 4 bits from ql, high 2 from qh), minus 32
    private static void Q6K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 208);
        for (int n = 0; n < 2; n++)
        {
            var ql = x.Slice(64 * n, 64);
            var qh = x.Slice(128 + 32 * n, 32);
            var sc = MemoryMarshal.Cast<byte, sbyte>(x.Slice(192 + 8 * n, 8));
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[128 * n + l] = d * sc[s] * q1;
                y[128 * n + l + 32] = d * sc[s + 2] * q2;
                y[128 * n + l + 64] = d * sc[s + 4] * q3;
                y[128 * n + l + 96] = d * sc[s + 6] * q4;
            }
        }
    }
}
