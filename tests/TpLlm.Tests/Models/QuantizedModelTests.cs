using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Tests.Models;

/// <summary>Whole models with quantized linear layers: logits against the unquantized model's, at every tp.</summary>
public class QuantizedModelTests
{
    private static float[] Logits(ModelFolder folder, int[] ids, int tp, IWeightFormat? format) => ThreadRanks.Run(tp, comm =>
    {
        using var m = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { ComputeThreads = 1, Quantization = format });
        int T = ids.Length, V = folder.Config.VocabSize;
        var h = new float[T * folder.Config.HiddenSize];
        m.Forward(ids, [new SequenceChunk(0, 0, T)], h, allPositions: true);
        var l = new float[T * V];
        m.Head.Forward(h, T, l);
        return l;
    })[0];

    public static TheoryData<string, int, double, double> Cases() => new()
    {
        // (format, tp, largest logit difference from bf16, mean difference): q4 moves logits about ten times as far as int8
        // int8 measured 0.236, 0.027 with activations bounded by column pairs (0.134, 0.019 when they were int16)
        { "int8", 1, 0.3, 0.035 }, { "int8", 2, 0.3, 0.035 }, { "int8", 3, 0.3, 0.035 }, { "int8", 4, 0.3, 0.035 },
        { "q4", 1, 2.5, 0.4 }, { "q4", 2, 2.5, 0.4 }, { "q4", 3, 2.5, 0.4 }, { "q4", 4, 2.5, 0.4 }, // measured 1.72, 0.30
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantized_logits_stay_near_the_unquantized_ones_and_agree_across_tp(string format, int tp, double maxDiff, double meanDiff)
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama);
        using var reference = new SafetensorsFile(Paths.FortuneReference);
        var ids = reference.ReadI64("prompt0.input_ids").Select(i => (int)i).ToArray();
        var plain = reference.ReadF32("prompt0.logits"); // transformers', bf16
        var q = WeightFormats.ForQuantize(format);
        var got = Logits(folder, ids, tp, q);
        double max = 0, sum = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = Math.Abs(got[i] - plain[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        Assert.True(max <= maxDiff && sum / got.Length <= meanDiff, $"{format} tp={tp}: largest difference {max:F4}, mean {sum / got.Length:F5}");
        Assert.True(max > 1e-3, "the layers were quantized"); // an unquantized model is within 1e-4 of the reference
        // quantized in whole groups whatever tp is, so every tp holds the same numbers: only the order of sums differs
        // (int8 activations mostly round the orders' differences away)
        if (tp > 1)
        {
            var one = Logits(folder, ids, 1, q);
            for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(got[i] - one[i]) <= 1e-3, $"{format} tp={tp} vs tp=1 at {i}: {got[i]} vs {one[i]}");
        }
    }

    [Fact]
    public void Quantized_down_projections_split_in_whole_groups_of_32()
    {
        using var folder = ModelFolder.Open(Paths.FortuneLlama); // intermediate 384 = 12 groups
        var c = folder.Config;
        foreach (int tp in new[] { 1, 2, 3, 4 })
        {
            var plans = Enumerable.Range(0, tp).Select(r => ShardPlan.For(c, tp, r, 1, 32)).ToArray();
            Assert.All(plans, p => Assert.Equal(0, p.MlpStart % 32));
            Assert.Equal(c.IntermediateSize, plans.Sum(p => p.MlpCount));
            Assert.Equal(BalancedSplit.Counts(12, tp).Select(g => g * 32), plans.Select(p => p.MlpCount));
        }
        var e = Assert.Throws<InvalidRequestException>(() => ShardPlan.For(c with { IntermediateSize = 64, NumHeads = 4 }, 3, 0, 1, 32));
        Assert.Contains("exceeds the 2 groups of 32 columns", e.Message);
    }

    [Fact]
    public void The_perplexity_command_matches_llama_cpp_and_bounds_each_formats_damage()
    {
        // llama.cpp's figures on the same text and windows (tests/fixtures/eval/README.md): F32 8.717, Q8_0 8.719, Q4_0 10.316
        double Ppl(string format)
        {
            var r = TpLlm.Tests.Cli.CliProcess.Run("perplexity", "--text", Paths.EvalText, "--context", "256", "--quantize", format, "--json", "--tp", "2");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
            Assert.Equal(50 * 127, doc.RootElement.GetProperty("tokens").GetInt32()); // 50 windows of 256, each scoring positions 128..254
            Assert.Equal(Math.Exp(doc.RootElement.GetProperty("mean_nll").GetDouble()), doc.RootElement.GetProperty("perplexity").GetDouble(), 9);
            Assert.Contains("window 50/50", r.Stderr);
            return doc.RootElement.GetProperty("perplexity").GetDouble();
        }
        double bf16 = Ppl("none"), int8 = Ppl("int8"), q4 = Ppl("q4");
        Assert.InRange(bf16, 8.717 * 0.98, 8.717 * 1.02);
        Assert.InRange(int8 / bf16, 1, 1.005);
        Assert.InRange(q4, bf16, 10.316); // better than llama.cpp's Q4_0 with the same unquantized head
    }
}
