using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Tests.Parallel;

public class ParallelLinearTests
{
    private static WeightMatrix Random(int rows, int cols, int seed, int rowStart = 0, int colStart = 0, int fullCols = -1)
    {
        var w = new TpLlm.Tensors.Formats.F32.F32Matrix(rows, cols);
        for (int r = 0; r < rows; r++) w.SetRow(r, Enumerable.Range(0, cols).Select(c => Value(seed, rowStart + r, colStart + c)).ToArray());
        return w;
    }

    private static float Value(int seed, int r, int c) => (float)Math.Sin(seed * 7.1 + r * 1.3 + c * 0.7);

    private static float[] Reference(float[] x, int T, int inF, int outF, int seed, float[]? bias)
    {
        var y = new float[T * outF];
        for (int t = 0; t < T; t++)
            for (int o = 0; o < outF; o++)
            {
                double acc = bias?[o] ?? 0;
                for (int i = 0; i < inF; i++) acc += x[t * inF + i] * Value(seed, o, i);
                y[t * outF + o] = (float)acc;
            }
        return y;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void Column_then_row_parallel_equals_the_unsplit_product_with_uneven_shards(int tp)
    {
        const int T = 3, inF = 12, mid = 17, outF = 7;
        var x = Enumerable.Range(0, T * inF).Select(i => (float)Math.Cos(i)).ToArray();
        var bias1 = Enumerable.Range(0, mid).Select(i => 0.1f * i).ToArray();
        var bias2 = Enumerable.Range(0, outF).Select(i => -0.2f * i).ToArray();
        var h = Reference(x, T, inF, mid, 1, bias1);
        var expected = Reference(h, T, mid, outF, 2, bias2);
        var results = ThreadRanks.Run(tp, comm =>
        {
            var (s, n) = BalancedSplit.Of(mid, tp, comm.Rank);
            using var mm = new MatMul(1);
            var gathered = new ColumnParallelLinear(Random(n, inF, 1, rowStart: s), bias1[s..(s + n)], comm, gatherOutput: true, BalancedSplit.Counts(mid, tp));
            var full = new float[T * mid];
            gathered.Forward(mm, x, T, full);
            var col = new ColumnParallelLinear(Random(n, inF, 1, rowStart: s), bias1[s..(s + n)], comm, gatherOutput: false, BalancedSplit.Counts(mid, tp));
            var local = new float[T * n];
            col.Forward(mm, x, T, local);
            var row = new RowParallelLinear(Random(outF, n, 2, colStart: s), bias2, comm, inputIsParallel: true, reduceResults: true);
            var y = new float[T * outF];
            row.Forward(mm, local, T, y);
            var rowFromFull = new RowParallelLinear(Random(outF, n, 2, colStart: s), bias2, comm, inputIsParallel: false, reduceResults: true, s, mid);
            var y2 = new float[T * outF];
            rowFromFull.Forward(mm, full, T, y2);
            return (full, y, y2);
        });
        foreach (var (full, y, y2) in results)
        {
            for (int i = 0; i < h.Length; i++) Assert.Equal(h[i], full[i], 1e-4f);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.Equal(expected[i], y[i], 1e-3f);
                Assert.Equal(expected[i], y2[i], 1e-3f);
            }
        }
    }

    [Fact]
    public void Gathered_column_parallel_logits_equal_a_single_rank_matmul_of_the_unpadded_weight()
    {
        // the partition tests' sizes, with the prime 100 003 for 1 000 003 (16 ranks each gathering [T, V_pad] would allocate GBs)
        foreach (int v in VocabPartitionTests.Vocabs.Select(v => v == 1_000_003 ? 100_003 : v))
            for (int tp = 1; tp <= 16; tp++)
                foreach (int align in new[] { 1, 64 })
                {
                    const int H = 3, T = 2;
                    var x = Enumerable.Range(0, T * H).Select(i => (float)Math.Cos(i + 1)).ToArray();
                    var expected = new float[T * v]; // single rank, unpadded weight (bf16-rounded, as stored)
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < v; o++)
                        {
                            double acc = 0;
                            for (int i = 0; i < H; i++) acc += x[t * H + i] * (double)Bf16.ToF32(Bf16.FromF32(Value(9, o, i)));
                            expected[t * v + o] = (float)acc;
                        }
                    var part = new VocabPartition(v, tp, align);
                    var outs = ThreadRanks.Run(tp, comm =>
                    {
                        var w = new TpLlm.Tensors.Formats.Bf16.Bf16Matrix(part.ShardSize, H);
                        var row = new ushort[H];
                        for (int r = 0; r < part.RealRows(comm.Rank); r++)
                        {
                            for (int c = 0; c < H; c++) row[c] = Bf16.FromF32(Value(9, part.Start(comm.Rank) + r, c));
                            w.SetBf16Row(r, row);
                        }
                        using var mm = new MatMul(1);
                        var head = new ColumnParallelLmHead(w, part, comm, mm);
                        var logits = new float[T * v];
                        head.Forward(x, T, logits);
                        return logits;
                    });
                    foreach (var o in outs)
                        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], o[i], 1e-4f);
                }
    }
}
