using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gptq;

namespace TpLlm.Tests.Checkpoints;

public class GptqCheckpointTests
{
    // A GPTQ module as AutoGPTQ's QuantLinear.pack lays it out: intweight [N, K] in 0..15 transposed to [K, N], eight
    // consecutive k per int32 (k % 8 in bits 4·(k % 8)); zeros [G, N] − 1 (the original format) packed eight n per int32.
    private static SafetensorsWriter.Entry[] Module(string name, int[,] q, Half[,] scales, int[,] zeros, bool minusOne, int[]? gIdx = null)
    {
        int N = q.GetLength(0), K = q.GetLength(1), G = scales.GetLength(0);
        var qweight = new byte[K / 8 * N * 4];
        for (int i = 0; i < K / 8; i++)
            for (int n = 0; n < N; n++)
            {
                uint v = 0;
                for (int j = 0; j < 8; j++) v |= (uint)q[n, 8 * i + j] << (4 * j);
                BitConverter.TryWriteBytes(qweight.AsSpan((i * N + n) * 4), v);
            }
        var qzeros = new byte[G * (N / 8) * 4];
        for (int g = 0; g < G; g++)
            for (int c = 0; c < N / 8; c++)
            {
                uint v = 0;
                for (int j = 0; j < 8; j++) v |= (uint)((zeros[g, 8 * c + j] - (minusOne ? 1 : 0)) & 15) << (4 * j);
                BitConverter.TryWriteBytes(qzeros.AsSpan((g * (N / 8) + c) * 4), v);
            }
        var s = new byte[G * N * 2];
        for (int g = 0; g < G; g++)
            for (int n = 0; n < N; n++) BitConverter.TryWriteBytes(s.AsSpan((g * N + n) * 2), scales[g, n]);
        var entries = new List<SafetensorsWriter.Entry>
        {
            new(name + ".qweight", "I32", [K / 8, N], qweight),
            new(name + ".qzeros", "I32", [G, N / 8], qzeros),
            new(name + ".scales", "F16", [G, N], s),
        };
        if (gIdx is not null) entries.Add(new(name + ".g_idx", "I32", [K], gIdx.SelectMany(BitConverter.GetBytes).ToArray()));
        return [.. entries];
    }

    private static (int[,] Q, Half[,] Scales, int[,] Zeros) Random(int N, int K, int G, int seed)
    {
        var rng = new Random(seed);
        var q = new int[N, K];
        for (int n = 0; n < N; n++) for (int k = 0; k < K; k++) q[n, k] = rng.Next(16);
        var s = new Half[G, N];
        var z = new int[G, N];
        for (int g = 0; g < G; g++)
            for (int n = 0; n < N; n++)
            {
                s[g, n] = (Half)((rng.NextDouble() - 0.3) * 0.02);
                z[g, n] = 8;
            }
        return (q, s, z);
    }

    private static GptqCheckpoint Open(string dir, IEnumerable<SafetensorsWriter.Entry> entries, GptqConfig config)
    {
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), entries);
        return new GptqCheckpoint(Checkpoint.Open(dir), config);
    }

    // Q4_0 block bytes decoded by GGUF's definition: f16 d, then byte j = level j | level j + 16 << 4; weight d · (level − 8)
    private static float[] Decode(ReadOnlySpan<byte> blocks)
    {
        var w = new float[blocks.Length / 18 * 32];
        for (int b = 0; b < blocks.Length / 18; b++)
        {
            float d = (float)BitConverter.ToHalf(blocks.Slice(18 * b, 2));
            for (int j = 0; j < 16; j++)
            {
                byte v = blocks[18 * b + 2 + j];
                w[32 * b + j] = d * ((v & 15) - 8);
                w[32 * b + j + 16] = d * ((v >> 4) - 8);
            }
        }
        return w;
    }

    [Theory]
    [InlineData(32, true, true)]
    [InlineData(64, false, false)]
    [InlineData(128, true, true)]
    [InlineData(-1, true, false)]
    public void A_gptq_module_reads_as_q4_0_blocks_of_its_weights(int group, bool minusOne, bool withGIdx)
    {
        const int N = 24, K = 256;
        int size = group == -1 ? K : group, G = K / size;
        var (q, scales, zeros) = Random(N, K, G, group + 1000);
        var gIdx = withGIdx ? Enumerable.Range(0, K).Select(k => k / size).ToArray() : null;
        using var ck = Open(Paths.TempDir(), [.. Module("layer.proj", q, scales, zeros, minusOne, gIdx), new("norm.weight", "F32", [4], new byte[16])],
            new GptqConfig(group, minusOne));
        Assert.Equal(["layer.proj.weight", "norm.weight"], ck.TensorNames.Order());
        Assert.True(ck.Contains("layer.proj.weight"));
        Assert.False(ck.Contains("layer.proj.qweight"));
        var t = ck.Tensor("layer.proj.weight");
        Assert.Equal(DType.Q4_0, t.DType);
        Assert.Equal([N, K], t.Shape);
        for (int n = 0; n < N; n++)
        {
            var row = Decode(t.Row(n, 0, K));
            for (int k = 0; k < K; k++) Assert.Equal((float)scales[k / size, n] * (q[n, k] - 8), row[k]);
            var part = Decode(t.Row(n, 64, 96)); // a column range in whole blocks, as a row-parallel rank reads
            for (int k = 0; k < 96; k++) Assert.Equal(row[64 + k], part[k]);
        }
    }

    [Fact]
    public void An_asymmetric_zero_or_reordered_groups_or_a_misshapen_part_is_named()
    {
        const int N = 16, K = 64;
        var (q, scales, zeros) = Random(N, K, 2, 5);
        zeros[1, 13] = 5;
        using (var ck = Open(Paths.TempDir(), Module("m", q, scales, zeros, true), new GptqConfig(32, true)))
        {
            var e = Assert.Throws<CheckpointException>(() => ck.Tensor("m.weight").Row(13, 0, K));
            Assert.Contains("group 1 of output 13 has zero point 5", e.Message);
            ck.Tensor("m.weight").Row(12, 0, K); // the other outputs' are 8
        }
        zeros[1, 13] = 8;
        var outside = Enumerable.Range(0, K).Select(k => k == 5 ? 2 : k / 32).ToArray();
        using (var ck = Open(Paths.TempDir(), Module("m", q, scales, zeros, true, outside), new GptqConfig(32, true)))
            Assert.Contains("'m.g_idx'[5] = 2, outside the 2 groups", Assert.Throws<CheckpointException>(() => ck.Tensor("m.weight")).Message);
        using (var ck = Open(Paths.TempDir(), Module("m", q, scales, zeros, true), new GptqConfig(64, true)))
            Assert.Contains("'m.scales' is F16 [2, 16], expected F16 [1, 16]", Assert.Throws<CheckpointException>(() => ck.Tensor("m.weight")).Message);
    }

    [Theory]
    [InlineData("\"bits\": 8", "quantization_config.bits is 8")]
    [InlineData("\"bits\": 4, \"sym\": false", "quantization_config.sym is false")]
    [InlineData("\"bits\": 4, \"group_size\": 48", "quantization_config.group_size is 48")]
    [InlineData("\"bits\": 4, \"checkpoint_format\": \"marlin\"", "quantization_config.checkpoint_format is 'marlin'")]
    public void A_gptq_config_that_does_not_map_onto_q4_blocks_is_refused_by_field(string fields, string message)
    {
        var dir = Paths.TempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), $"{{\"quantization_config\": {{\"quant_method\": \"gptq\", {fields}}}}}");
        var e = Assert.Throws<CheckpointException>(() => GptqConfig.Read(dir));
        Assert.Contains(message, e.Message);
        Assert.Contains("config.json", e.Message);
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}");
        Assert.Null(GptqConfig.Read(dir));
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128}}");
        Assert.Equal(new GptqConfig(128, true), GptqConfig.Read(dir));
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 64, \"desc_act\": true, \"checkpoint_format\": \"gptq_v2\"}}");
        Assert.Equal(new GptqConfig(64, false, true), GptqConfig.Read(dir));
    }

    // bf16 of f by round to nearest, ties to even (the upper half of the f32 bits)
    private static ushort Bf16Bits(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    [Fact]
    public void Act_order_groups_read_as_bf16_rows_of_each_columns_own_group()
    {
        const int N = 16, K = 128, G = 4;
        var (q, scales, zeros) = Random(N, K, G, 9);
        var order = Enumerable.Range(0, K).Select(k => (k * 7 + 3) % G).ToArray(); // neighbouring columns in different groups
        using var ck = Open(Paths.TempDir(), Module("m", q, scales, zeros, false, order), new GptqConfig(32, false, true));
        var t = ck.Tensor("m.weight");
        Assert.Equal(DType.BF16, t.DType);
        Assert.Equal([N, K], t.Shape);
        for (int n = 0; n < N; n++)
        {
            var row = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.Row(n, 0, K)).ToArray();
            for (int k = 0; k < K; k++) Assert.Equal(Bf16Bits((float)scales[order[k], n] * (q[n, k] - 8)), row[k]);
            var part = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.Row(n, 37, 50)).ToArray(); // any columns: bf16 has no blocks
            Assert.Equal(row[37..87], part);
        }
        // a g_idx in column order is the plain layout, whatever desc_act says
        using var plain = Open(Paths.TempDir(), Module("m", q, scales, zeros, false, [.. Enumerable.Range(0, K).Select(k => k / 32)]), new GptqConfig(32, false, true));
        Assert.Equal(DType.Q4_0, plain.Tensor("m.weight").DType);
    }
}
