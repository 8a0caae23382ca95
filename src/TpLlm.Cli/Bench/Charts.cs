using ScottPlot;

namespace TpLlm.Cli.Bench;

/// <summary>PNG charts of benchmark results.</summary>
public static class Charts
{
    /// <summary>ms vs T per (strategy, tp), one panel per shape stacked vertically.</summary>
    public static void LmHead(IReadOnlyList<LmHeadResult> results, string path)
    {
        var shapes = results.Select(r => r.Shape).Distinct().ToArray();
        var multi = new Multiplot();
        multi.AddPlots(shapes.Length);
        for (int i = 0; i < shapes.Length; i++)
        {
            var plot = multi.GetPlot(i);
            foreach (var g in results.Where(r => r.Shape == shapes[i]).GroupBy(r => (r.Strategy, r.Tp)))
            {
                var pts = g.OrderBy(r => r.T).ToArray();
                var s = plot.Add.Scatter(pts.Select(p => Math.Log2(p.T)).ToArray(), pts.Select(p => p.Time.MedianMs).ToArray());
                s.LegendText = $"{g.Key.Strategy} tp={g.Key.Tp}";
            }
            plot.Title($"LM head {shapes[i]}: ms vs T");
            plot.XLabel("log2 T (tokens)");
            plot.YLabel("median ms");
            plot.ShowLegend(Alignment.UpperLeft);
        }
        try
        {
            multi.SavePng(path, 1000, 420 * shapes.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TpLlmException($"--chart: cannot write '{path}': {e.Message}", e);
        }
        StdOut.Err.WriteLine($"chart: {path}");
    }
}
