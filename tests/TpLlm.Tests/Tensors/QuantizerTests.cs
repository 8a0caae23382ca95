using TpLlm.Checkpoints;
using TpLlm.Tensors;
using TpLlm.Tensors.Formats.Blocks;
using TpLlm.Tensors.Formats.Int8;
using TpLlm.Tensors.Formats.Q4;

namespace TpLlm.Tests.Tensors;

/// <summary>The quantizers against scalar references: error bounds, group edges, rows not a multiple of 32.</summary>
public class QuantizerTests
{
    private static float[] Row(Random rng, int n, float scale = 1) =>
        [.. Enumerable.Range(0, n).Select(i => (float)(rng.NextDouble() * 2 - 1) * scale * (i % 7 == 0 ? 4 : 1))];

    [Theory]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(1)]
    public void Int8_levels_are_within_half_a_step_of_every_weight(int cols)
    {
        var rng = new Random(cols);
        var w = (BlockQuantizedMatrix<Int8Block>)Int8Format.Instance.Create(3, cols, DType.F32);
        var rows = Enumerable.Range(0, 3).Select(r => Row(rng, cols, r + 0.5f)).ToArray();
        for (int r = 0; r < 3; r++) w.SetRow(r, rows[r]);
        for (int r = 0; r < 3; r++)
            for (int g = 0; g * 32 < cols; g++)
            {
                var group = rows[r].Skip(g * 32).Take(32).ToArray();
                // the scale: max |w| / 127, rounded to the nearest half (GGUF's Q8_0)
                float expected = (float)(Half)(group.Max(Math.Abs) / 127f);
                float d = (float)BitConverter.UInt16BitsToHalf(w.ScaleBits(r, g));
                Assert.Equal(expected, d);
                for (int c = g * 32; c < Math.Min(cols, g * 32 + 32); c++)
                {
                    Assert.InRange(w.Level(r, c), -127, 127);
                    Assert.True(Math.Abs(rows[r][c] - w.Get(r, c)) <= d / 2 * 1.0001f, $"[{r},{c}] {rows[r][c]} → {w.Get(r, c)} (step {d})");
                }
            }
        // past Cols the last group is zero, so it adds nothing to a product
        for (int r = 0; r < 3; r++)
            for (int c = cols; c < (cols + 31) / 32 * 32; c++) Assert.Equal(0, w.Level(r, c));
    }

    [Fact]
    public void Q4_scales_beat_llama_cpps_max_over_minus_8_in_squared_error()
    {
        // over many groups: the chosen scale's error is never worse than Q4_0's d = max/−8, and better on the whole
        var rng = new Random(5);
        Span<sbyte> levels = stackalloc sbyte[32];
        double ours = 0, reference = 0;
        for (int i = 0; i < 2000; i++)
        {
            var group = Row(rng, 32, (float)rng.NextDouble() + 0.01f);
            float d = (float)BitConverter.UInt16BitsToHalf(Q4Block.Quantize(group, levels));
            float max = group.MaxBy(Math.Abs), dr = (float)(Half)(max / -8f);
            double e = 0, er = 0;
            for (int k = 0; k < 32; k++)
            {
                Assert.InRange((int)levels[k], -8, 7);
                e += Math.Pow(group[k] - d * levels[k], 2);
                er += Math.Pow(group[k] - dr * Math.Clamp(MathF.Round(group[k] / dr), -8, 7), 2);
            }
            Assert.True(e <= er * 1.0001 + 1e-12, $"group {i}: {e} > {er}");
            ours += e;
            reference += er;
        }
        Assert.True(ours < 0.96 * reference, $"squared error {ours} against max/−8's {reference}");
    }

    [Fact]
    public void Sixteen_groups_quantized_together_equal_each_quantized_alone()
    {
        // the side-by-side search makes Quantize's choices bit for bit, whatever the groups: zeros, a lone weight, ties for
        // the largest magnitude (the first one counts), negative and positive extremes, tiny and large scales
        var rng = new Random(8);
        var levels = new sbyte[512];
        var scales = new ushort[16];
        var one = new sbyte[32];
        for (int i = 0; i < 300; i++)
        {
            var x = new float[512];
            for (int j = 0; j < 16; j++)
            {
                var g = ((i + j) % 9) switch
                {
                    0 => new float[32],
                    1 => Enumerable.Range(0, 32).Select(k => k == (i % 32) ? -0.75f : 0f).ToArray(),
                    2 => Enumerable.Range(0, 32).Select(k => k % 5 == 0 ? (k % 2 == 0 ? 1.5f : -1.5f) : (float)rng.NextDouble()).ToArray(),
                    3 => Row(rng, 32, 1e-4f),
                    _ => Row(rng, 32, (float)rng.NextDouble() * 3 + 0.01f),
                };
                g.CopyTo(x, 32 * j);
            }
            foreach (var (name, quantize16, quantize) in new (string, Action<float[], ushort[], sbyte[]>, Func<float[], int, ushort>)[]
            {
                ("q4", (a, s, l) => Q4Block.Quantize16(a, s, l), (a, j) => Q4Block.Quantize(a.AsSpan(32 * j, 32), one)),
                ("int8", (a, s, l) => Int8Block.Quantize16(a, s, l), (a, j) => Int8Block.Quantize(a.AsSpan(32 * j, 32), one)),
            })
            {
                quantize16(x, scales, levels);
                for (int j = 0; j < 16; j++)
                {
                    ushort alone = quantize(x, j);
                    Assert.True(alone == scales[j], $"{name} round {i} group {j}: scale bits {scales[j]:X4}, alone {alone:X4}");
                    Assert.Equal(one, levels.AsSpan(32 * j, 32).ToArray());
                }
            }
        }
    }

    [Fact]
    public void A_zero_group_and_a_lone_weight_quantize_exactly_enough()
    {
        Span<sbyte> levels = stackalloc sbyte[32];
        Assert.Equal(0, Q4Block.Quantize(new float[32], levels));
        Assert.All(levels.ToArray(), l => Assert.Equal(0, l));
        Assert.Equal(0, Int8Block.Quantize(new float[32], levels));
        var lone = new float[32];
        lone[31] = -0.75f; // the last column of a group, negative: the wide end of q4's range
        float d = (float)BitConverter.UInt16BitsToHalf(Q4Block.Quantize(lone, levels));
        Assert.Equal(-0.75f, d * levels[31], 3);
        d = (float)BitConverter.UInt16BitsToHalf(Int8Block.Quantize(lone, levels));
        Assert.Equal(-0.75f, d * levels[31], 3);
    }

    [Theory]
    [InlineData("int8", 1.0625)]
    [InlineData("q4", 0.5625)]
    public void A_quantized_matrix_counts_its_bytes_per_weight_with_the_scales(string format, double bytesPerWeight)
    {
        var w = WeightFormats.ForQuantize(format)!.Create(64, 2048, DType.BF16);
        Assert.Equal(64 * 2048 * bytesPerWeight, w.ByteSize);
        Assert.Equal(format, w.Format.Name);
        Assert.Equal(32, w.Format.GroupSize);
        Assert.True(w.Format.IsQuantized);
    }
}

/// <summary>The f16 scale conversions against .NET's <see cref="Half"/>: every half, and a million floats around the range's edges.</summary>
public class Half16Tests
{
    [Fact]
    public void Every_half_widens_exactly()
    {
        for (int h = 0; h < 65536; h++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            if (float.IsNaN(expected) || float.IsInfinity(expected)) continue; // scales are finite
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(Half16.ToF32((ushort)h)));
        }
    }

    [Fact]
    public void Floats_round_to_the_nearest_half_ties_to_even_like_dotnet()
    {
        var rng = new Random(9);
        for (int i = 0; i < 1_000_000; i++)
        {
            // magnitudes from below the smallest subnormal half to past the largest half, and exact ties
            float f = (float)(Math.Pow(2, rng.Next(-30, 18)) * (1 + rng.NextDouble())) * (rng.Next(2) * 2 - 1);
            if (i % 4 == 0) f = BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(f) & ~0xFFFu | 0x1000u);
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)f), Half16.FromF32(f));
        }
        foreach (float f in new[] { 0f, -0f, 65504f, 65519.99f, 65520f, float.PositiveInfinity, float.NegativeInfinity, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f })
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)f), Half16.FromF32(f));
        Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(Half16.FromF32(float.NaN))));
    }
}
