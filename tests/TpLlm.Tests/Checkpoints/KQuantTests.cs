using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gguf;
using TpLlm.Models;

namespace TpLlm.Tests.Checkpoints;

/// <summary>
/// GGUF's K-quants widen to the numbers their blocks encode: super-blocks built here from chosen levels, scales and mins,
/// laid out as ggml's <c>block_q4_K</c>, <c>block_q5_K</c> and <c>block_q6_K</c> structs declare, read back through the
/// loader (bf16, as the decoder keeps them).
/// </summary>
public class KQuantTests
{
    private const int Rows = 3, Cols = 512; // two super-blocks a row

    [Theory]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void Super_blocks_widen_to_the_values_they_encode(uint type)
    {
        var rng = new Random((int)type);
        var expected = new float[Rows * Cols];
        var data = new List<byte>();
        for (int b = 0; b < Rows * Cols / 256; b++)
            data.AddRange(type == 14 ? Q6K(rng, expected.AsSpan(b * 256, 256)) : Q45K(rng, expected.AsSpan(b * 256, 256), fifthBit: type == 13));
        var w = GgufHostileTests.Tiny(g => g.Tensor("blk.0.extra_k.weight", type, [Cols, Rows], [.. data]));
        var path = Path.Combine(Paths.TempDir(), "k.gguf");
        w.Write(path);
        using var file = new GgufFile(path);
        var info = file.Tensors["blk.0.extra_k.weight"];
        var dtype = GgmlType.ToDType(type)!.Value;
        var got = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            ElementConvert.ToF32(dtype, file.Bytes(info, r * dtype.Bytes(Cols), (int)dtype.Bytes(Cols)), got, "test");
            for (int c = 0; c < Cols; c++) Assert.Equal(expected[r * Cols + c], got[c], 1e-6f);
        }
        using var folder = ModelFolder.Open(path);
        Assert.Contains(folder.Notes, n => n.Contains($"1 {GgmlType.Name(type)} decoder tensors widened to bf16"));
    }

    // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: weight e of a half n (128 each) sits in
    // ql[64n + l + 32·(quarter & 1)] (low nibble for quarters 0 and 1, high for 2 and 3), its top two bits in
    // qh[32n + l] at bit 2·quarter, its scale is scales[8n + l/16 + 2·quarter]; value d·scale·(q − 32)
    private static byte[] Q6K(Random rng, Span<float> y)
    {
        var b = new byte[210];
        var d = (Half)(rng.NextDouble() * 0.01 + 0.001);
        var sc = new sbyte[16];
        for (int i = 0; i < 16; i++) b[192 + i] = (byte)(sc[i] = (sbyte)rng.Next(-128, 128));
        BitConverter.TryWriteBytes(b.AsSpan(208), d);
        for (int e = 0; e < 256; e++)
        {
            int q = rng.Next(64), n = e / 128, quarter = e % 128 / 32, l = e % 32;
            int qlAt = 64 * n + l + 32 * (quarter & 1);
            b[qlAt] |= (byte)(quarter < 2 ? q & 0xF : (q & 0xF) << 4);
            b[128 + 32 * n + l] |= (byte)((q >> 4) << (2 * quarter));
            y[e] = (float)d * sc[8 * n + l / 16 + 2 * quarter] * (q - 32);
        }
        return b;
    }

    // block_q4_K { half d, dmin; uint8 scales[12]; uint8 qs[128]; } (block_q5_K adds uint8 qh[32] before qs): eight
    // sub-blocks of 32 with 6-bit scales and mins (sub-blocks 0–3 in the low 6 bits of bytes 0–3 and 4–7; 4–7 in the
    // nibbles of bytes 8–11 with their top two bits in the high bits of bytes 0–7); pair j's weights are the low, then
    // the high nibbles of qs[32j..32j+32] (Q5_K: plus 16 where bit 2j, then 2j + 1, of qh[l] is set); value d·sc·q − dmin·m
    private static byte[] Q45K(Random rng, Span<float> y, bool fifthBit)
    {
        int qsAt = fifthBit ? 48 : 16;
        var b = new byte[fifthBit ? 176 : 144];
        Half d = (Half)(rng.NextDouble() * 0.01 + 0.001), dmin = (Half)(rng.NextDouble() * 0.01);
        BitConverter.TryWriteBytes(b.AsSpan(0), d);
        BitConverter.TryWriteBytes(b.AsSpan(2), dmin);
        var sc = new int[8];
        var mn = new int[8];
        for (int j = 0; j < 8; j++)
        {
            sc[j] = rng.Next(64);
            mn[j] = rng.Next(64);
            if (j < 4)
            {
                b[4 + j] |= (byte)sc[j];
                b[4 + j + 4] |= (byte)mn[j];
            }
            else
            {
                b[4 + j + 4] = (byte)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
                b[4 + j - 4] |= (byte)((sc[j] >> 4) << 6);
                b[4 + j] |= (byte)((mn[j] >> 4) << 6);
            }
        }
        for (int e = 0; e < 256; e++)
        {
            int pair = e / 64, high = e % 64 / 32, l = e % 32, sub = 2 * pair + high;
            int q = rng.Next(fifthBit ? 32 : 16);
            b[qsAt + 32 * pair + l] |= (byte)(high == 0 ? q & 0xF : (q & 0xF) << 4);
            if (fifthBit && q >= 16) b[16 + l] |= (byte)(1 << (2 * pair + high));
            y[e] = (float)d * sc[sub] * q - (float)dmin * mn[sub];
        }
        return b;
    }
}
