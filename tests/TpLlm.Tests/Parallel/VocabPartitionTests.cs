using FsCheck;
using FsCheck.Fluent;
using TpLlm.Parallel;

namespace TpLlm.Tests.Parallel;

public class VocabPartitionTests
{
    public static readonly int[] Vocabs = [1, 2, 7, 1000, 32000, 50257, 128256, 151936, 1_000_003];

    [Fact]
    public void Partitions_cover_the_vocabulary_exactly_once_for_every_size_tp_and_align()
    {
        foreach (int v in Vocabs)
            for (int tp = 1; tp <= 16; tp++)
                foreach (int align in new[] { 1, 64 })
                {
                    var p = new VocabPartition(v, tp, align);
                    Assert.Equal(0, p.PaddedVocabSize % (tp * align));
                    Assert.True(p.PaddedVocabSize >= v && p.PaddedVocabSize - v < tp * align, $"{p}");
                    int covered = 0;
                    for (int r = 0; r < tp; r++)
                    {
                        Assert.Equal(r * p.ShardSize, p.Start(r));
                        Assert.Equal(p.ShardSize, p.End(r) - p.Start(r));
                        Assert.InRange(p.RealRows(r), 0, p.ShardSize);
                        if (p.RealRows(r) > 0) Assert.Equal(covered, p.Start(r)); // real rows are contiguous from 0
                        covered += p.RealRows(r);
                    }
                    Assert.Equal(v, covered);
                    Assert.Equal(p.End(tp - 1), p.PaddedVocabSize);
                }
    }

    [Fact]
    public void Every_id_belongs_to_exactly_the_rank_whose_real_range_holds_it()
    {
        Prop.ForAll(Gen.Choose(1, 200_000).ToArbitrary(), Gen.Choose(1, 16).ToArbitrary(), Gen.Elements(1, 2, 64, 128).ToArbitrary(),
            (v, tp, align) =>
            {
                var p = new VocabPartition(v, tp, align);
                foreach (int id in new[] { 0, v / 2, v - 1 })
                {
                    int r = p.RankOf(id);
                    if (!(p.Start(r) <= id && id < p.RealEnd(r))) return false;
                }
                return p.End(tp - 1) == p.PaddedVocabSize;
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_rank_with_only_padding_is_legal()
    {
        var p = new VocabPartition(2, 3);
        Assert.Equal(3, p.PaddedVocabSize);
        Assert.Equal(0, p.RealRows(2));
        Assert.Equal(2, p.RealEnd(2));
        var q = new VocabPartition(1, 16, 64);
        Assert.Equal(1024, q.PaddedVocabSize);
        Assert.Equal(1, q.RealRows(0));
        Assert.Equal(0, q.RealRows(15));
    }

    [Fact]
    public void Samplable_rows_are_the_real_rows_below_the_tokenizer_vocab_and_sum_to_it()
    {
        Prop.ForAll(Gen.Choose(1, 200_000).ToArbitrary(), Gen.Choose(1, 16).ToArbitrary(), Gen.Choose(1, 250_000).ToArbitrary(),
            (v, tp, samplable) =>
            {
                var p = new VocabPartition(v, tp, 64);
                int sum = 0;
                for (int r = 0; r < tp; r++)
                {
                    int n = p.SamplableRows(r, samplable);
                    if (n < 0 || n > p.RealRows(r)) return false;
                    if (n > 0 && p.Start(r) != sum) return false; // samplable ids are contiguous from 0
                    sum += n;
                }
                return sum == Math.Min(v, samplable) && p.SamplableRows(0, int.MaxValue) == p.RealRows(0);
            }).QuickCheckThrowOnFailure();
        // V = 10, tp = 2, align = 4: shards of 8; a tokenizer of 9 ids leaves rank 1 one samplable row
        var q = new VocabPartition(10, 2, 4);
        Assert.Equal(8, q.SamplableRows(0, 9));
        Assert.Equal(1, q.SamplableRows(1, 9));
        Assert.Equal(0, q.SamplableRows(1, 5));
    }

    [Theory]
    [InlineData(0, 1, 1, "vocab size V = 0")]
    [InlineData(-5, 2, 1, "vocab size V = -5")]
    [InlineData(10, 0, 1, "tensor-parallel size tp = 0")]
    [InlineData(10, 2, 0, "align = 0")]
    [InlineData(int.MaxValue, 16, 128, "exceeds")]
    public void Bad_arguments_raise_clear_errors(int v, int tp, int align, string message)
    {
        var e = Assert.Throws<TpLlmException>(() => new VocabPartition(v, tp, align));
        Assert.Contains(message, e.Message);
    }
}
