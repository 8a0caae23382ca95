using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Tests.Parallel;

/// <summary>The LM head loaded from llama3-mini against transformers' logits.</summary>
public class LmHeadFixtureTests
{
    private const int V = 50257, H = 64;

    public static IEnumerable<object[]> Configs()
    {
        for (int tp = 1; tp <= 8; tp++) yield return [LmHeadStrategy.ColumnParallel, tp, 1];
        foreach (int tp in new[] { 3, 8 }) yield return [LmHeadStrategy.ColumnParallel, tp, 64];
        foreach (int tp in new[] { 1, 2, 4, 8 }) yield return [LmHeadStrategy.RowParallel, tp, 1];
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Head_reproduces_reference_logits(LmHeadStrategy strategy, int tp, int align)
    {
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var ck = Checkpoint.Open(Paths.Llama3Mini);
        var loader = new WeightLoader(ck);
        for (int p = 0; p < 2; p++)
        {
            var hidden = reference.ReadF32($"prompt{p}.hidden");
            var expected = reference.ReadF32($"prompt{p}.logits");
            int T = hidden.Length / H;
            Assert.Equal(T * V, expected.Length);
            var outputs = ThreadRanks.Run(tp, comm =>
            {
                using var mm = new MatMul(1);
                var head = LmHeadLoader.Load(loader, tieWordEmbeddings: false, V, H, comm, mm, strategy, align);
                Assert.Equal("bf16", head.Weight.Format.Name);
                var logits = new float[T * V];
                head.Forward(hidden, T, logits);
                return logits;
            });
            foreach (var logits in outputs)
            {
                Assert.Equal(expected.Length, logits.Length);
                float maxErr = 0;
                for (int i = 0; i < logits.Length; i++) maxErr = Math.Max(maxErr, Math.Abs(logits[i] - expected[i]));
                Assert.True(maxErr <= 1e-4f, $"{strategy} tp={tp} prompt {p}: max abs error {maxErr}");
            }
        }
    }

    [Fact]
    public void Gather_to_root_gives_the_same_logits_only_at_the_root()
    {
        using var reference = new SafetensorsFile(Paths.Llama3Reference);
        using var ck = Checkpoint.Open(Paths.Llama3Mini);
        var loader = new WeightLoader(ck);
        var hidden = reference.ReadF32("prompt0.hidden");
        var expected = reference.ReadF32("prompt0.logits");
        int T = hidden.Length / H;
        var outputs = ThreadRanks.Run(3, comm =>
        {
            using var mm = new MatMul(1);
            var head = (IVocabParallelHead)LmHeadLoader.Load(loader, false, V, H, comm, mm);
            var logits = new float[T * V];
            head.ForwardToRoot(hidden, T, logits, root: 1);
            return logits;
        });
        Assert.All(outputs[1].Zip(expected), pair => Assert.True(Math.Abs(pair.First - pair.Second) <= 1e-4f));
        Assert.All(outputs[0], v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Row_parallel_head_refuses_hidden_not_divisible_by_tp()
    {
        using var ck = Checkpoint.Open(Paths.Llama3Mini);
        var loader = new WeightLoader(ck);
        var e = Assert.Throws<RankFailedException>(() => ThreadRanks.Run(3, comm => LmHeadLoader.Load(loader, false, V, H, comm, new MatMul(1), LmHeadStrategy.RowParallel)));
        Assert.Contains("H = 64 and tp = 3", e.Message);
    }

    [Fact]
    public void Tied_head_reads_the_embedding_by_exact_name()
    {
        using var ck = Checkpoint.Open(Paths.FortuneLlama);
        Assert.False(ck.Contains(LmHeadLoader.HeadName));
        Assert.Equal(LmHeadLoader.EmbeddingName, LmHeadLoader.SourceTensor(ck, tieWordEmbeddings: true));
        using var mini = Checkpoint.Open(Paths.Llama3Mini);
        Assert.Equal(LmHeadLoader.HeadName, LmHeadLoader.SourceTensor(mini, tieWordEmbeddings: false));
        Assert.Equal(LmHeadLoader.EmbeddingName, LmHeadLoader.SourceTensor(mini, tieWordEmbeddings: true));
    }
}
