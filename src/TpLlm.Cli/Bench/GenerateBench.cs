using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Tensors;

namespace TpLlm.Cli.Bench;

/// <summary>
/// <c>tpllm bench generate</c>: prefill and decode tokens/s of a model folder — by default a Llama-3.2-1B-shaped one
/// (H 2048, 16 layers, 32/8 heads, I 8192, V 128256, tied) with random weights, written once — in each weight format
/// asked for, with the bandwidth roofline of decoding (each format's own weight bytes per token). The formats of one
/// tp are loaded side by side and their runs interleaved, so a neighbour who comes and goes slows them alike.
/// </summary>
public static class GenerateBench
{
    /// <summary>One measurement.</summary>
    public sealed record Result(string Quantize, int Tp, int PromptTokens, int DecodeTokens, double LoadSeconds, double TtftMs, double PrefillTokensPerSecond,
        double DecodeTokensPerSecond, double WeightBytesPerToken, double RooflineTokensPerSecond, double RooflinePercent,
        int Runs, double DecodeTokensPerSecondMin, double DecodeTokensPerSecondMax, double PrefillTokensPerSecondMin, double PrefillTokensPerSecondMax);

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print results as JSON on stdout" };
        var tps = new Option<string>("--tp") { Description = "tensor-parallel sizes", DefaultValueFactory = _ => "1,2" };
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length", DefaultValueFactory = _ => 128 };
        var decode = new Option<int>("--decode-tokens") { Description = "tokens to decode", DefaultValueFactory = _ => 64 };
        var layers = new Option<int>("--layers") { Description = "decoder layers of the synthetic model (16 for Llama-3.2-1B)", DefaultValueFactory = _ => 16 };
        var runs = new Option<int>("--runs") { Description = "timed generations per tp and format; the medians of prefill and of decode speed are reported, with their spreads", DefaultValueFactory = _ => 3 };
        var model = new Option<string?>("--model", "-m") { Description = "a model folder, GGUF file or Hub id to measure (default: a synthetic Llama-3.2-1B-shaped one with random weights, written to the temp folder once)" };
        var quantize = new Option<string>("--quantize") { Description = $"weight formats to measure, comma-separated: {string.Join(", ", WeightFormats.QuantizeNames)}", DefaultValueFactory = _ => "none" };
        var path = BenchCommand.PathOption();
        var cmd = new Command("generate", "end-to-end prefill and decode tokens/s on a synthetic Llama-3.2-1B-shaped model, or on --model") { json, tps, prompt, decode, layers, runs, model, quantize, path };
        cmd.SetAction(r =>
        {
            int promptTokens = r.GetValue(prompt), decodeTokens = r.GetValue(decode), nLayers = r.GetValue(layers), nRuns = r.GetValue(runs);
            if (promptTokens < 1 || decodeTokens < 1 || nLayers < 1 || nRuns < 1) throw new TpLlmException("--prompt-tokens, --decode-tokens, --layers and --runs must be ≥ 1");
            var formats = r.GetValue(quantize)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (formats.Length == 0) throw new TpLlmException("--quantize: give at least one format");
            var quantizations = formats.Select(WeightFormats.ForQuantize).ToArray();
            var tpList = BenchCommand.Ints(r.GetValue(tps)!, "--tp");
            var kernels = BenchCommand.ParsePath(r.GetValue(path));
            var dir = r.GetValue(model) is { } m ? ModelLocator.Resolve(m) : Path.Combine(Path.GetTempPath(), $"tpllm-bench-1b-{nLayers}");
            if (r.GetValue(model) is null) SyntheticCheckpoint.Write(dir, nLayers);
            var err = BenchRanks.Reports ? StdOut.Err : TextWriter.Null; // under mpirun rank 0 reports
            var roof = BenchRanks.Reports ? Roofline.Measure(Environment.ProcessorCount) : new Roofline(1, 1, 1);
            err.WriteLine($"measured: read bandwidth {roof.ReadGBps:F1} GB/s, f32 FMA peak {roof.PeakGflops:F0} GFLOP/s (kernels {kernels})");
            var results = new List<Result>();
            using var folder = ModelFolder.Open(dir);
            foreach (int tp in tpList)
                foreach (var x in Measure(folder, tp, formats, quantizations, kernels, promptTokens, decodeTokens, nRuns, roof))
                {
                    results.Add(x);
                    err.WriteLine($"tp={tp} {x.Quantize}: loaded in {x.LoadSeconds:F1} s; prompt {promptTokens} tokens, TTFT {x.TtftMs:F0} ms ({x.PrefillTokensPerSecond:F1} prefill tokens/s, {x.PrefillTokensPerSecondMin:F1}–{x.PrefillTokensPerSecondMax:F1}); " +
                        $"decode {x.DecodeTokensPerSecond:F2} tokens/s (median of {x.Runs}, {x.DecodeTokensPerSecondMin:F2}–{x.DecodeTokensPerSecondMax:F2}); " +
                        $"weights {x.WeightBytesPerToken / 1e9:F2} GB per token → roofline {x.RooflineTokensPerSecond:F2} tokens/s ({x.RooflinePercent:F0} %)");
                }
            if (!BenchRanks.Reports) return 0;
            var after = roof.Recheck(err);
            if (r.GetValue(json)) StdOut.Out.WriteLine(JsonSerializer.Serialize(new { machine = roof, machineAfter = after, results }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    // each format's load timed alone (a model already resident slows the next one's page faults: the order would decide),
    // then every format loaded at once on tp ranks, and each run times every format once, starting from a different one
    private static IEnumerable<Result> Measure(ModelFolder folder, int tp, string[] names, IWeightFormat?[] formats, KernelPath kernels, int promptTokens, int decodeTokens, int nRuns, Roofline roof)
    {
        int n = formats.Length;
        if (!BenchRanks.Run(tp, comm =>
        {
            var models = new DecoderModel[n];
            var load = new double[n];
            var bytes = new long[n];
            try
            {
                DecoderModel Load(int f) => DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { MaxContext = promptTokens + decodeTokens + 1, Quantization = formats[f], KernelPath = kernels });
                for (int f = 0; f < n; f++)
                {
                    GC.Collect(); // no earlier model's weights left to slow this load down
                    GC.WaitForPendingFinalizers();
                    comm.Barrier();
                    var sw = Stopwatch.StartNew();
                    using (Load(f)) comm.Barrier();
                    load[f] = sw.Elapsed.TotalSeconds;
                }
                for (int f = 0; f < n; f++)
                {
                    models[f] = Load(f);
                    var all = new long[comm.Size];
                    comm.AllGather<long>([WeightBytes(models[f])], all);
                    bytes[f] = all.Sum();
                }
                var ids = Enumerable.Range(0, promptTokens).Select(i => (i * 7919) % folder.Config.VocabSize).ToArray();
                foreach (var m in models) // warm-up: the prefill's kernels JIT-compiled too
                    new Generator(m, folder.Config.VocabSize, []).Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 2, IgnoreEos = true }]);
                var timed = Enumerable.Range(0, n).Select(_ => new List<GenerationStats>()).ToArray();
                for (int run = 0; run < nRuns; run++)
                    for (int j = 0; j < n; j++)
                    {
                        int f = (run + j) % n;
                        comm.Barrier();
                        var g = new Generator(models[f], folder.Config.VocabSize, []);
                        g.Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = decodeTokens + 1, IgnoreEos = true }]);
                        timed[f].Add(g.LastStats);
                    }
                return (timed, load, bytes);
            }
            finally
            {
                foreach (var m in models) m?.Dispose();
            }
        }, out var res)) yield break; // not rank 0 of an MPI job
        for (int f = 0; f < n; f++)
        {
            // the median run by decode speed and the median by prefill speed (its TTFT), each with its spread
            var byRate = res.timed[f].OrderBy(s => s.DecodeTokensPerSecond).ToArray();
            var byPrefill = res.timed[f].OrderBy(s => s.PrefillTokensPerSecond).ToArray();
            var median = byRate[byRate.Length / 2];
            var prefill = byPrefill[byPrefill.Length / 2];
            double rooflineTps = roof.ReadGBps * 1e9 / res.bytes[f];
            yield return new Result(names[f], tp, promptTokens, decodeTokens, res.load[f], prefill.Prefill.TotalMilliseconds, prefill.PrefillTokensPerSecond,
                median.DecodeTokensPerSecond, res.bytes[f], rooflineTps, 100 * median.DecodeTokensPerSecond / rooflineTps, byRate.Length,
                byRate[0].DecodeTokensPerSecond, byRate[^1].DecodeTokensPerSecond, byPrefill[0].PrefillTokensPerSecond, byPrefill[^1].PrefillTokensPerSecond);
        }
    }

    // the bytes a decode step reads: every linear layer and the head (the embedding only row by row)
    private static long WeightBytes(DecoderModel m)
    {
        long b = m.Head.Weight.ByteSize;
        foreach (var l in m.Layers)
            b += l.Attention.Qkv.Weight.ByteSize + l.Attention.O.Weight.ByteSize + l.Mlp.GateUp.Weight.ByteSize + l.Mlp.Down.Weight.ByteSize;
        return b;
    }
}
