using System.CommandLine;
using System.Text.Json;

namespace TpLlm.Cli.Bench;

/// <summary><c>tpllm bench</c>: LM-head, kernel and end-to-end benchmarks with the machine's roofline.</summary>
public static class BenchCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var bench = new Command("bench", "benchmarks: lm-head, matmul, generate, serve");
        bench.Subcommands.Add(LmHead());
        bench.Subcommands.Add(MatMulBench.Create());
        bench.Subcommands.Add(GenerateBench.Create());
        bench.Subcommands.Add(ServeBench.Create());
        return bench;
    }

    internal static int[] Ints(string text, string option) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.TryParse(t, out int v) && v >= 1 ? v : throw new TpLlmException($"{option}: '{t}' is not a positive integer")).ToArray();

    // --path: the kernel path a bench forces (null: the best this CPU runs)
    internal static Option<string> PathOption() => new("--path") { Description = "kernel path: vector512, vector256 or scalar (default: the best this CPU runs)" };

    internal static TpLlm.Tensors.KernelPath ParsePath(string? name)
    {
        var path = name?.ToLowerInvariant() switch
        {
            null => TpLlm.Tensors.KernelPaths.Best,
            "vector512" => TpLlm.Tensors.KernelPath.Vector512,
            "vector256" => TpLlm.Tensors.KernelPath.Vector256,
            "scalar" => TpLlm.Tensors.KernelPath.Scalar,
            var other => throw new TpLlmException($"--path: '{other}' is not vector512, vector256 or scalar"),
        };
        if (!TpLlm.Tensors.KernelPaths.IsSupported(path)) throw new TpLlmException($"--path: this CPU does not run {path} (best: {TpLlm.Tensors.KernelPaths.Best})");
        return path;
    }

    private static (string, int, int) ParseShape(string n)
    {
        var known = LmHeadBench.Shapes.FirstOrDefault(s => s.Name.Equals(n, StringComparison.OrdinalIgnoreCase));
        if (known.Name is not null) return known;
        var hv = n.Split('x');
        if (hv.Length == 2 && int.TryParse(hv[0], out int h) && int.TryParse(hv[1], out int v) && h > 0 && v > 0) return (n, h, v);
        throw new TpLlmException($"--shapes: unknown shape '{n}' (known: {string.Join(", ", LmHeadBench.Shapes.Select(x => x.Name))}, or HxV)");
    }

    private static Command LmHead()
    {
        var json = new Option<bool>("--json") { Description = "print results as JSON on stdout (the table goes to stderr)" };
        var shapes = new Option<string>("--shapes") { Description = "comma-separated shapes: " + string.Join(", ", LmHeadBench.Shapes.Select(s => s.Name)), DefaultValueFactory = _ => string.Join(",", LmHeadBench.Shapes.Select(s => s.Name)) };
        var ts = new Option<string>("--t") { Description = "token counts", DefaultValueFactory = _ => "1,4,16,64" };
        var tps = new Option<string>("--tp") { Description = "tensor-parallel sizes", DefaultValueFactory = _ => "1,2,4" };
        var strategies = new Option<string>("--strategies") { Description = string.Join(", ", LmHeadBench.Strategies), DefaultValueFactory = _ => string.Join(",", LmHeadBench.Strategies) };
        var chart = new Option<string?>("--chart") { Description = "write a PNG chart of ms vs T per strategy to this file (default: no chart)" };
        var runs = new Option<int>("--runs") { Description = "timed runs per measurement, after a warm-up (default: as many as fit in 0.4 s, 5 to 50); more runs give steadier medians on a shared machine" };
        var cmd = new Command("lm-head", "time the LM head at real shapes with synthetic bf16 weights") { json, shapes, ts, tps, strategies, chart, runs };
        cmd.SetAction(r =>
        {
            var names = r.GetValue(shapes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var selected = names.Select(ParseShape).ToArray();
            var strat = r.GetValue(strategies)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var s in strat)
                if (!LmHeadBench.Strategies.Contains(s)) throw new TpLlmException($"--strategies: unknown strategy '{s}' (known: {string.Join(", ", LmHeadBench.Strategies)})");
            int timedRuns = r.GetValue(runs);
            if (timedRuns < 0) throw new TpLlmException($"--runs: {timedRuns} is negative (0 or omitted: as many as fit in 0.4 s)");
            string? png = r.GetValue(chart) is { Length: > 0 } c ? Path.GetFullPath(c) : null;
            // checked before the run, so a typo does not cost a benchmark's minutes
            if (png is not null && !Directory.Exists(Path.GetDirectoryName(png)))
                throw new TpLlmException($"--chart: folder '{Path.GetDirectoryName(png)}' of '{png}' does not exist");
            var err = BenchRanks.Reports ? StdOut.Err : TextWriter.Null; // under mpirun rank 0 reports
            err.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, kernels {TpLlm.Tensors.KernelPaths.Best}");
            var roof = BenchRanks.Reports ? Roofline.Measure(Environment.ProcessorCount) : new Roofline(1, 1, 1);
            err.WriteLine($"measured: read bandwidth {roof.ReadGBps:F1} GB/s, f32 FMA peak {roof.PeakGflops:F0} GFLOP/s ({roof.Threads} threads)");
            err.WriteLine($"{"shape",-11} {"tp",2} {"strategy",-16} {"T",3} {"median ms",10} {"min–max ms",15} {"GB/s",7} {"GFLOP/s",8} {"roofline",8} {"recv B/rank",12}");
            var results = LmHeadBench.Run(selected, Ints(r.GetValue(ts)!, "--t"), Ints(r.GetValue(tps)!, "--tp"), strat, roof, x =>
                err.WriteLine($"{x.Shape,-11} {x.Tp,2} {x.Strategy,-16} {x.T,3} {x.Time.MedianMs,10:F3} {x.Time.MinMs,7:F3}–{x.Time.MaxMs,-7:F3} {x.GBps,7:F1} {x.Gflops,8:F1} {x.RooflinePercent,7:F0}% {x.CommBytesPerRank,12:N0}"), timedRuns);
            if (!BenchRanks.Reports) return 0;
            var after = roof.Recheck(err);
            if (r.GetValue(json)) StdOut.Out.WriteLine(JsonSerializer.Serialize(new { machine = roof, machineAfter = after, results }, Indented));
            if (png is not null) Charts.LmHead(results, png);
            return 0;
        });
        return cmd;
    }
}
