using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using TpLlm.Distributed;
using TpLlm.Models;

namespace TpLlm.Cli.Bench;

/// <summary>
/// <c>tpllm bench generate</c>: prefill and decode tokens/s of a Llama-3.2-1B-shaped model
/// (H 2048, 16 layers, 32/8 heads, I 8192, V 128256, tied) built as a sparse synthetic
/// checkpoint and loaded through the real loader, with the bandwidth roofline of decoding.
/// </summary>
public static class GenerateBench
{
    /// <summary>One measurement.</summary>
    public sealed record Result(int Tp, int PromptTokens, int DecodeTokens, double TtftMs, double PrefillTokensPerSecond,
        double DecodeTokensPerSecond, double WeightBytesPerToken, double RooflineTokensPerSecond, double RooflinePercent,
        int Runs, double DecodeTokensPerSecondMin, double DecodeTokensPerSecondMax);

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print results as JSON on stdout" };
        var tps = new Option<string>("--tp") { Description = "tensor-parallel sizes", DefaultValueFactory = _ => "1,2" };
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length", DefaultValueFactory = _ => 128 };
        var decode = new Option<int>("--decode-tokens") { Description = "tokens to decode", DefaultValueFactory = _ => 64 };
        var layers = new Option<int>("--layers") { Description = "decoder layers (16 for Llama-3.2-1B)", DefaultValueFactory = _ => 16 };
        var runs = new Option<int>("--runs") { Description = "timed generations per tp; the median (by decode speed) is reported, with the spread", DefaultValueFactory = _ => 3 };
        var model = new Option<string?>("--model", "-m") { Description = "a model folder to measure (default: a synthetic Llama-3.2-1B-shaped one with random weights, written to the temp folder once)" };
        var cmd = new Command("generate", "end-to-end prefill and decode tokens/s on a synthetic Llama-3.2-1B-shaped model, or on --model") { json, tps, prompt, decode, layers, runs, model };
        cmd.SetAction(r =>
        {
            int promptTokens = r.GetValue(prompt), decodeTokens = r.GetValue(decode), nLayers = r.GetValue(layers), nRuns = r.GetValue(runs);
            if (promptTokens < 1 || decodeTokens < 1 || nLayers < 1 || nRuns < 1) throw new TpLlmException("--prompt-tokens, --decode-tokens, --layers and --runs must be ≥ 1");
            var dir = r.GetValue(model) ?? Path.Combine(Path.GetTempPath(), $"tpllm-bench-1b-{nLayers}");
            if (r.GetValue(model) is null) SyntheticCheckpoint.Write(dir, nLayers);
            var err = StdOut.Err;
            var roof = Roofline.Measure(Environment.ProcessorCount);
            err.WriteLine($"measured: read bandwidth {roof.ReadGBps:F1} GB/s, f32 FMA peak {roof.PeakGflops:F0} GFLOP/s");
            var results = new List<Result>();
            using var folder = ModelFolder.Open(dir);
            foreach (int tp in BenchCommand.Ints(r.GetValue(tps)!, "--tp"))
            {
                var res = ThreadRanks.Run(tp, comm =>
                {
                    using var model = LlamaModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { MaxContext = promptTokens + decodeTokens + 1 });
                    long weightBytes = WeightBytes(model);
                    var all = new long[comm.Size];
                    comm.AllGather<long>([weightBytes], all);
                    var ids = Enumerable.Range(0, promptTokens).Select(i => (i * 7919) % folder.Config.VocabSize).ToArray();
                    var gen = new Generator(model, folder.Config.VocabSize, []);
                    gen.Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = 2, IgnoreEos = true }]); // warm-up: the prefill's kernels JIT-compiled too
                    var timed = new List<(double Ttft, double Total)>();
                    for (int run = 0; run < nRuns; run++)
                    {
                        comm.Barrier();
                        var sw = Stopwatch.StartNew();
                        double ttft = 0;
                        var g = new Generator(model, folder.Config.VocabSize, [])
                        {
                            OnToken = (_, _, _) => { if (ttft == 0) ttft = sw.Elapsed.TotalMilliseconds; },
                        };
                        g.Generate([new GenerationRequest { PromptIds = ids, MaxNewTokens = decodeTokens + 1, IgnoreEos = true }]);
                        timed.Add((ttft, sw.Elapsed.TotalMilliseconds));
                    }
                    return (timed, bytes: all.Sum());
                })[0];
                // decode tokens/s of each run; the median run is reported (its TTFT too), with the spread
                var byRate = res.timed.Select(t => (t.Ttft, Rate: decodeTokens / ((t.Total - t.Ttft) / 1e3))).OrderBy(t => t.Rate).ToArray();
                var (ttftMs, tps2) = byRate[byRate.Length / 2];
                double rooflineTps = roof.ReadGBps * 1e9 / res.bytes;
                var x = new Result(tp, promptTokens, decodeTokens, ttftMs, promptTokens / (ttftMs / 1e3), tps2, res.bytes, rooflineTps, 100 * tps2 / rooflineTps,
                    byRate.Length, byRate[0].Rate, byRate[^1].Rate);
                results.Add(x);
                err.WriteLine($"tp={tp}: prompt {promptTokens} tokens, TTFT {x.TtftMs:F0} ms ({x.PrefillTokensPerSecond:F1} prefill tokens/s); decode {x.DecodeTokensPerSecond:F2} tokens/s " +
                    $"(median of {x.Runs}, {x.DecodeTokensPerSecondMin:F2}–{x.DecodeTokensPerSecondMax:F2}); weights {x.WeightBytesPerToken / 1e9:F2} GB per token → roofline {x.RooflineTokensPerSecond:F2} tokens/s ({x.RooflinePercent:F0} %)");
            }
            var after = roof.Recheck(err);
            if (r.GetValue(json)) StdOut.Out.WriteLine(JsonSerializer.Serialize(new { machine = roof, machineAfter = after, results }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return cmd;
    }

    private static long WeightBytes(LlamaModel m)
    {
        long b = m.Head.Weight.ByteSize; // the head is read every token; the embedding only row by row
        foreach (var l in m.Layers)
            b += l.Attention.Qkv.Weight.ByteSize + l.Attention.O.Weight.ByteSize + l.Mlp.GateUp.Weight.ByteSize + l.Mlp.Down.Weight.ByteSize;
        return b;
    }
}
