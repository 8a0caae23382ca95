using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Cli.Bench;

/// <summary>
/// <c>tpllm bench matmul</c>: one rank's <c>y[T, N] = x[T, K] · W[N, K]ᵀ</c> in each weight format, random weights
/// quantized as the loader quantizes them, the formats of one (shape, T) timed interleaved, against the roofline of
/// that format's bytes and the FMA peak — the kernels alone, without a model around them.
/// </summary>
public static class MatMulBench
{
    /// <summary>One measurement.</summary>
    public sealed record Result(string Quantize, bool Vnni, int N, int K, int T, double WeightBytes, double MedianMs, double MinMs, double MaxMs,
        double GBps, double Gflops, double RooflinePercent);

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print results as JSON on stdout" };
        var shapes = new Option<string>("--shapes") { Description = "comma-separated NxK weight shapes (rows x input columns)", DefaultValueFactory = _ => "8192x2048,2048x8192" };
        var ts = new Option<string>("--t") { Description = "token counts", DefaultValueFactory = _ => "1,4,16,64,128" };
        var quantize = new Option<string>("--quantize") { Description = $"weight formats, comma-separated: {string.Join(", ", WeightFormats.QuantizeNames)}", DefaultValueFactory = _ => string.Join(",", WeightFormats.QuantizeNames) };
        var threads = new Option<int>("--threads") { Description = "compute threads (default: the machine's cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var runs = new Option<int>("--runs") { Description = "timed interleaved runs per (shape, T), after a warm-up (0: as many as fit in 0.4 s, 5 to 50)", DefaultValueFactory = _ => 0 };
        var path = BenchCommand.PathOption();
        var vnni = new Option<string>("--vnni") { Description = "the 256-bit path's integer products on AVX-VNNI: auto (where the CPU has it), off, or both (on the 256-bit path, the formats that take it timed each way, interleaved)", DefaultValueFactory = _ => "auto" };
        var cmd = new Command("matmul", "time the weight formats' kernels at real shapes, interleaved, against their roofline") { json, shapes, ts, quantize, threads, runs, path, vnni };
        cmd.SetAction(r =>
        {
            var dims = r.GetValue(shapes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseShape).ToArray();
            var tList = BenchCommand.Ints(r.GetValue(ts)!, "--t");
            var names = r.GetValue(quantize)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.Length == 0) throw new TpLlmException("--quantize: give at least one format");
            var formats = names.Select(n => WeightFormats.ForQuantize(n) ?? WeightFormats.Native).ToArray();
            int nThreads = r.GetValue(threads), nRuns = r.GetValue(runs);
            if (nThreads < 1) throw new TpLlmException($"--threads: {nThreads} must be ≥ 1");
            if (nRuns < 0) throw new TpLlmException($"--runs: {nRuns} is negative");
            var kernels = BenchCommand.ParsePath(r.GetValue(path));
            string vnniMode = r.GetValue(vnni)!;
            bool[] vnniSettings = vnniMode switch
            {
                "auto" => [KernelPaths.Vnni],
                "off" => [false],
                "both" when KernelPaths.Vnni => [true, false],
                "both" => throw new TpLlmException("--vnni both: this CPU has no AVX-VNNI"),
                _ => throw new TpLlmException($"--vnni: '{vnniMode}' is not auto, off or both"),
            };
            var err = StdOut.Err;
            var roof = Roofline.Measure(nThreads);
            err.WriteLine($"measured: read bandwidth {roof.ReadGBps:F1} GB/s, f32 FMA peak {roof.PeakGflops:F0} GFLOP/s ({nThreads} threads, kernels {kernels}, AVX-VNNI {(KernelPaths.Vnni ? "yes" : "no")})");
            var results = new List<Result>();
            bool vnniPath = kernels == KernelPath.Vector256; // the one path whose products take VNNI
            var engines = (vnniPath ? vnniSettings : vnniSettings[..1]).Select(v => new MatMul(nThreads, kernels, v)).ToArray();
            // (format, engine) pairs: a format that takes VNNI once per setting, the others once
            var variants = formats.SelectMany((f, i) => (f.TakesVnni ? engines : engines[..1]).Select(e => (Format: i, Engine: e))).ToArray();
            var comm = new SingleRankCommunicator();
            foreach (var (n, k) in dims)
            {
                var weights = formats.Select(f => Random(f, n, k)).ToArray();
                foreach (int t in tList)
                {
                    var x = new float[t * k];
                    var rng = new Random(t);
                    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                    var y = new float[t * n];
                    var times = Timing.MeasureInterleaved(comm, variants.Select(v => (Action)(() => v.Engine.Run(x, t, weights[v.Format], y, n))).ToArray(), nRuns);
                    for (int i = 0; i < variants.Length; i++)
                    {
                        var (f, engine) = variants[i];
                        double bytes = weights[f].ByteSize, flops = 2.0 * t * n * k, s = times[i].MedianMs / 1e3;
                        bool onVnni = engine.Vnni && formats[f].TakesVnni && vnniPath;
                        var res = new Result(names[f], onVnni, n, k, t, bytes, times[i].MedianMs, times[i].MinMs, times[i].MaxMs, bytes / s / 1e9, flops / s / 1e9, 100 * roof.Seconds(bytes, flops) / s);
                        results.Add(res);
                        err.WriteLine($"{n}x{k} T={t} {res.Quantize}{(onVnni ? " (VNNI)" : "")}: {res.MedianMs:F3} ms ({res.MinMs:F3}–{res.MaxMs:F3}, {times[i].Runs} runs); {res.GBps:F1} GB/s of weights, {res.Gflops:F0} GFLOP/s; {res.RooflinePercent:F0} % of roofline");
                    }
                }
            }
            foreach (var e in engines) e.Dispose();
            var after = roof.Recheck(err);
            if (r.GetValue(json)) StdOut.Out.WriteLine(JsonSerializer.Serialize(new { machine = roof, machineAfter = after, results }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    private static (int N, int K) ParseShape(string s)
    {
        var nk = s.Split('x');
        if (nk.Length == 2 && int.TryParse(nk[0], out int n) && int.TryParse(nk[1], out int k) && n > 0 && k > 0 && (long)n * k <= 1L << 30) return (n, k);
        throw new TpLlmException($"--shapes: '{s}' is not NxK with N, K ≥ 1 and N·K ≤ 2^30");
    }

    // rows of random bf16 values in ±0.05, given to the format as the loader gives them
    private static WeightMatrix Random(IWeightFormat format, int n, int k)
    {
        var w = format.Create(n, k, DType.BF16);
        var row = new ushort[k];
        var rng = new Random(n * 31 + k);
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < k; c++) row[c] = Bf16.FromF32((float)(rng.NextDouble() * 0.1 - 0.05));
            w.SetRow(r, MemoryMarshal.AsBytes(row.AsSpan()), DType.BF16, "bench");
        }
        return w;
    }
}
