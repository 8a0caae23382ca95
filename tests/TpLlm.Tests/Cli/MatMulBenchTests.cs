using System.Text.Json;

namespace TpLlm.Tests.Cli;

public class MatMulBenchTests
{
    [Fact]
    public void Each_format_is_timed_at_each_shape_and_T_with_its_own_bytes()
    {
        var r = CliProcess.Run("bench", "matmul", "--shapes", "40x100,17x33", "--t", "1,5", "--runs", "3", "--threads", "2", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var rows = doc.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(2 * 2 * 3, rows.Length);
        foreach (var shape in new[] { (40, 100), (17, 33) })
            foreach (int t in new[] { 1, 5 })
            {
                var cell = rows.Where(x => x.GetProperty("N").GetInt32() == shape.Item1 && x.GetProperty("K").GetInt32() == shape.Item2 && x.GetProperty("T").GetInt32() == t).ToArray();
                Assert.Equal(["none", "int8", "q4"], cell.Select(x => x.GetProperty("Quantize").GetString()));
                // bf16 in 16-row panels of column pairs; int8 and q4 in blocks of 16 rows × 32 columns with an f16 scale a row
                int panels = (shape.Item1 + 15) / 16, groups = (shape.Item2 + 31) / 32;
                Assert.Equal([panels * 16.0 * ((shape.Item2 + 1) / 2) * 4, panels * groups * (32.0 + 512), panels * groups * (32.0 + 256)],
                    cell.Select(x => x.GetProperty("WeightBytes").GetDouble()));
                foreach (var x in cell)
                {
                    double ms = x.GetProperty("MedianMs").GetDouble();
                    Assert.InRange(x.GetProperty("MinMs").GetDouble(), 0, ms);
                    Assert.Equal(2.0 * t * shape.Item1 * shape.Item2 / (ms / 1e3) / 1e9, x.GetProperty("Gflops").GetDouble(), 6);
                }
            }
        Assert.Contains("17x33 T=5 q4:", r.Stderr);
    }

    [Fact]
    public void The_path_option_times_the_kernels_it_names()
    {
        var r = CliProcess.Run("bench", "matmul", "--shapes", "40x100", "--t", "5", "--runs", "3", "--path", "vector256", "--quantize", "none,q4", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("kernels Vector256", r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(2, doc.RootElement.GetProperty("results").GetArrayLength());
    }

    [Theory]
    [InlineData("--shapes", "0x5", "--shapes: '0x5'")]
    [InlineData("--shapes", "40", "--shapes: '40'")]
    [InlineData("--quantize", "q5", "--quantize 'q5'")]
    [InlineData("--threads", "0", "--threads: 0")]
    [InlineData("--path", "1", "--path: '1' is not vector512, vector256 or scalar")]
    [InlineData("--vnni", "maybe", "--vnni: 'maybe' is not auto, off or both")]
    public void Bad_options_fail_naming_them(string option, string value, string message)
    {
        var r = CliProcess.Run("bench", "matmul", option, value);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr);
    }
}
