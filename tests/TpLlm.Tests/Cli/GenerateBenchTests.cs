using System.Text.Json;

namespace TpLlm.Tests.Cli;

public class GenerateBenchTests
{
    [Fact]
    public void Bench_generate_reports_the_median_run_its_spread_and_the_roofline_it_implies()
    {
        var r = CliProcess.Run("bench", "generate", "--layers", "1", "--prompt-tokens", "6", "--decode-tokens", "3", "--runs", "3", "--tp", "1,2", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        double bandwidth = doc.RootElement.GetProperty("machine").GetProperty("ReadGBps").GetDouble();
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal([1, 2], results.Select(x => x.GetProperty("Tp").GetInt32()));
        foreach (var x in results)
        {
            double rate = x.GetProperty("DecodeTokensPerSecond").GetDouble(), bytes = x.GetProperty("WeightBytesPerToken").GetDouble();
            Assert.Equal(3, x.GetProperty("Runs").GetInt32());
            Assert.InRange(rate, x.GetProperty("DecodeTokensPerSecondMin").GetDouble(), x.GetProperty("DecodeTokensPerSecondMax").GetDouble());
            Assert.Equal(bandwidth * 1e9 / bytes, x.GetProperty("RooflineTokensPerSecond").GetDouble(), 6);
            Assert.Equal(100 * rate * bytes / (bandwidth * 1e9), x.GetProperty("RooflinePercent").GetDouble(), 6);
            Assert.Equal(6 / (x.GetProperty("TtftMs").GetDouble() / 1e3), x.GetProperty("PrefillTokensPerSecond").GetDouble(), 6);
            // one layer of the 1B shape, bf16: q/k/v/o, gate/up/down and the tied head, every rank's shard summed
            const double H = 2048, I = 8192, kv = 512, V = 128256;
            Assert.InRange(bytes, 2 * (H * (H + 2 * kv) + H * H + 3 * H * I + V * H), 2 * (H * (H + 2 * kv) + H * H + 3 * H * I + V * H) * 1.01);
        }
        Assert.Contains("median of 3", r.Stderr);
    }

    [Theory]
    [InlineData("--runs", "0", "--runs must be ≥ 1")]
    [InlineData("--path", "avx3", "--path: 'avx3' is not vector512, vector256 or scalar")]
    public void Bench_generate_refuses_bad_options_naming_them(string option, string value, string message)
    {
        var r = CliProcess.Run("bench", "generate", option, value);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
    }
}
