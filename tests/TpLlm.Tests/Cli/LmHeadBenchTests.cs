using TpLlm.Cli.Bench;
using TpLlm.Parallel;

namespace TpLlm.Tests.Cli;

public class LmHeadBenchTests
{
    [Fact]
    public void Bench_rows_report_the_bytes_each_strategy_moves_and_time_against_the_given_roofline()
    {
        const int H = 64, V = 1001; // V odd: the column-parallel shards are padded
        var roof = new Roofline(ReadGBps: 10, PeakGflops: 100, Threads: 2);
        var rows = new List<LmHeadResult>();
        LmHeadBench.Run([("t", H, V)], [1, 5], [1, 2], LmHeadBench.Strategies, roof, rows.Add);
        Assert.Equal(2 * 2 * LmHeadBench.Strategies.Length, rows.Count);
        // reported per tp, strategy by strategy, T by T (though timed interleaved)
        Assert.Equal([.. new[] { 1, 2 }.SelectMany(tp => LmHeadBench.Strategies.SelectMany(s => new[] { (tp, s, 1), (tp, s, 5) }))], rows.Select(r => (r.Tp, r.Strategy, r.T)));
        foreach (var r in rows)
        {
            int vPad = new VocabPartition(V, r.Tp).PaddedVocabSize;
            long expected = r.Strategy switch
            {
                "replicated" => 0,
                "row-parallel" => 2L * (r.Tp - 1) * r.T * V * 4 / r.Tp,       // ring all-reduce of [T, V]
                "column-parallel" => (long)(V - vPad / r.Tp) * r.T * 4,         // rank 0 receives the other ranks' columns below V
                _ => (long)(r.Tp - 1) * r.T * 8,                                // one (value, id) pair per row and peer
            };
            Assert.True(expected == r.CommBytesPerRank, $"{r.Strategy} tp={r.Tp} T={r.T}: {r.CommBytesPerRank} bytes, expected {expected}");
            Assert.Equal(2.0 * r.T * H * V / 1e9, r.Gflop, 9);
            double bytesRead = r.WeightGB * 1e9 * (r.Strategy == "replicated" ? r.Tp : 1);
            double flops = 2.0 * r.T * H * V * (r.Strategy == "replicated" ? r.Tp : 1);
            Assert.Equal(100 * roof.Seconds(bytesRead, flops) / (r.Time.MedianMs / 1e3), r.RooflinePercent, 6);
            Assert.InRange(r.Time.MinMs, 0, r.Time.MedianMs);
            Assert.InRange(r.Time.Runs, 5, 50);
        }
        // the bytes the kernels stream: each rank's shard in whole 16-row panels of bf16 — column-parallel
        // [V_pad/2, H] per rank (501 rows → 512), row-parallel [V, H/2] per rank (1001 rows → 1008)
        static int Panels(int rows) => (rows + 15) / 16 * 16;
        Assert.Equal(2 * 2.0 * Panels(new VocabPartition(V, 2).PaddedVocabSize / 2) * H / 1e9, rows.First(r => r is { Strategy: "column-parallel", Tp: 2 }).WeightGB, 12);
        Assert.Equal(2 * 2.0 * Panels(V) * (H / 2) / 1e9, rows.First(r => r is { Strategy: "row-parallel", Tp: 2 }).WeightGB, 12);
        Assert.Equal(2.0 * Panels(V) * H / 1e9, rows.First(r => r is { Strategy: "replicated", Tp: 2 }).WeightGB, 12);
    }

    [Fact]
    public void A_run_count_fixes_the_timed_runs_of_every_measurement()
    {
        var rows = new List<LmHeadResult>();
        LmHeadBench.Run([("t", 64, 300)], [1, 3], [2], ["row-parallel", "column-parallel"], new Roofline(10, 100, 2), rows.Add, runs: 7);
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.Equal(7, r.Time.Runs));
    }

    [Fact]
    public void A_negative_run_count_is_refused_before_the_run()
    {
        var r = CliProcess.Run("bench", "lm-head", "--shapes", "64x100", "--t", "1", "--tp", "1", "--runs", "-3");
        Assert.True(r.ExitCode != 0, r.Stderr);
        Assert.Contains("--runs: -3", r.Stderr);
        Assert.DoesNotContain("measured:", r.Stderr);
        Assert.DoesNotContain("Unhandled", r.Stderr);
    }

    [Fact]
    public void A_chart_path_in_a_missing_folder_is_refused_before_the_run()
    {
        var missing = Path.Combine(Path.GetTempPath(), "tpllm-no-such-folder-" + Guid.NewGuid().ToString("N"), "c.png");
        var r = CliProcess.Run("bench", "lm-head", "--shapes", "64x100", "--t", "1", "--tp", "1", "--chart", missing);
        Assert.True(r.ExitCode != 0, r.Stderr);
        Assert.Contains("--chart", r.Stderr);
        Assert.Contains("does not exist", r.Stderr);
        Assert.DoesNotContain("measured:", r.Stderr); // refused before measuring anything
        Assert.DoesNotContain("Unhandled", r.Stderr);
    }
}
