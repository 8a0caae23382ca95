using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Sampling;
using TpLlm.Tensors;

namespace TpLlm.Cli.Bench;

/// <summary>One LM-head measurement.</summary>
public sealed record LmHeadResult(string Shape, int H, int V, int T, int Tp, string Strategy, Timing Time, double WeightGB, double Gflop,
    double GBps, double Gflops, double RooflinePercent, long CommBytesPerRank);

/// <summary>
/// Times the LM head at real shapes with synthetic bf16 weights. Strategies: replicated (every rank
/// computes all logits), row-parallel (all-reduce of [T, V]), column-parallel (all-gather of
/// [T, V_pad/tp] per rank), and column-parallel with vocab-parallel greedy (no gather).
/// </summary>
public static class LmHeadBench
{
    /// <summary>Shapes of real models' heads: (name, H, V).</summary>
    public static readonly (string Name, int H, int V)[] Shapes =
    [
        ("GPT-2", 768, 50257), ("Llama-2-7B", 4096, 32000), ("Llama-3-8B", 4096, 128256), ("Qwen2.5-7B", 3584, 152064),
    ];

    /// <summary>Strategy names, in report order.</summary>
    public static readonly string[] Strategies = ["replicated", "row-parallel", "column-parallel", "column+greedy"];

    /// <summary>
    /// Runs every (shape, tp, strategy, T) and reports each (shape, tp)'s results as they come; <paramref name="runs"/>
    /// timed runs per measurement (0: as many as fit in ~0.4 s, 5 to 50). The strategies of one (shape, tp, T) are
    /// timed interleaved, run by run (<see cref="Timing.MeasureInterleaved"/>), so that they meet the same machine.
    /// </summary>
    public static List<LmHeadResult> Run(IEnumerable<(string Name, int H, int V)> shapes, int[] ts, int[] tps, string[] strategies, Roofline roof,
        Action<LmHeadResult> report, int runs = 0)
    {
        var results = new List<LmHeadResult>();
        int cores = Environment.ProcessorCount;
        foreach (var (name, H, V) in shapes)
            foreach (int tp in tps)
            {
                if (!BenchRanks.Run(tp, world =>
                {
                    int threads = Math.Max(1, cores / tp);
                    using var mm = new MatMul(threads);
                    int maxT = ts.Max();
                    var x = new float[maxT * H];
                    var rng = new Random(1);
                    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
                    var tokens = new int[maxT];
                    // every strategy's weights at once (each counts its own bytes), so their runs can alternate
                    var built = strategies.Select(strategy =>
                    {
                        var comm = new CountingCommunicator(world);
                        var (weight, head, part) = Build(strategy, H, V, comm, mm);
                        var logits = new float[maxT * Math.Max(V, part?.PaddedVocabSize ?? 0)];
                        var sampler = part is null ? null : new VocabParallelSampler(comm, part);
                        return (strategy, comm, weight, head, logits, sampler);
                    }).ToArray();
                    var list = new List<(int S, int T, Timing Time, long Bytes)>();
                    foreach (int T in ts)
                    {
                        var steps = built.Select(b => b.strategy switch
                        {
                            "replicated" => () => mm.Run(x, T, b.weight, b.logits, V),
                            "column+greedy" => () =>
                            {
                                ((IVocabParallelHead)b.head!).ForwardLocal(x, T, b.logits);
                                b.sampler!.Greedy(b.logits, T, tokens);
                            },
                            _ => (Action)(() => b.head!.Forward(x, T, b.logits)),
                        }).ToArray();
                        var bytes = new long[steps.Length];
                        for (int k = 0; k < steps.Length; k++)
                        {
                            built[k].comm.Reset();
                            steps[k]();
                            bytes[k] = built[k].comm.TotalBytesReceived; // bytes that cross into this rank
                        }
                        var times = Timing.MeasureInterleaved(world, steps, runs);
                        for (int k = 0; k < steps.Length; k++) list.Add((k, T, times[k], bytes[k]));
                    }
                    // every rank's weight bytes, summed for rank 0 (which may be another process)
                    var mine = built.Select(b => b.weight.ByteSize).ToArray();
                    var all = new long[mine.Length * world.Size];
                    world.AllGather<long>(mine, all);
                    var total = Enumerable.Range(0, mine.Length).Select(k => Enumerable.Range(0, world.Size).Sum(r => all[r * mine.Length + k])).ToArray();
                    return (list, weightBytes: total);
                }, out var rank0)) continue; // not rank 0 of an MPI job: rank 0 reports
                foreach (var (k, T, time, bytes) in rank0.list.OrderBy(e => e.S).ThenBy(e => Array.IndexOf(ts, e.T)))
                {
                    var strategy = strategies[k];
                    long totalWeight = rank0.weightBytes[k] / (strategy == "replicated" ? tp : 1);
                    double flops = 2.0 * T * H * V;
                    double weightGB = totalWeight / 1e9;
                    double s = time.MedianMs / 1e3;
                    // replicated: every rank reads all weights; the machine reads tp × them
                    double bytesRead = strategy == "replicated" ? totalWeight * (double)tp : totalWeight;
                    double flopsDone = strategy == "replicated" ? flops * tp : flops;
                    double roofS = roof.Seconds(bytesRead, flopsDone);
                    var r = new LmHeadResult(name, H, V, T, tp, strategy, time, weightGB, flops / 1e9, bytesRead / s / 1e9, flopsDone / s / 1e9,
                        100 * roofS / s, bytes);
                    results.Add(r);
                    report(r);
                }
            }
        return results;
    }

    private static (WeightMatrix Weight, ILmHead? Head, VocabPartition? Part) Build(string strategy, int H, int V, ICommunicator comm, MatMul mm)
    {
        switch (strategy)
        {
            case "replicated":
                return (Random(V, H, comm.Rank), null, null);
            case "row-parallel":
                if (H % comm.Size != 0) throw new TpLlmException($"row-parallel head needs H % tp == 0 (H = {H}, tp = {comm.Size})");
                var w = Random(V, H / comm.Size, comm.Rank);
                return (w, new RowParallelLmHead(w, H, comm, mm), null);
            default:
                var part = new VocabPartition(V, comm.Size);
                var shard = Random(part.ShardSize, H, comm.Rank, part.RealRows(comm.Rank));
                return (shard, new ColumnParallelLmHead(shard, part, comm, mm), part);
        }
    }

    private static WeightMatrix Random(int rows, int cols, int seed, int realRows = -1)
    {
        var w = new Tensors.Formats.Bf16.Bf16Matrix(rows, cols);
        var rng = new Random(seed);
        Span<ushort> pattern = stackalloc ushort[4096];
        for (int i = 0; i < pattern.Length; i++) pattern[i] = Bf16.FromF32((float)(rng.NextDouble() - 0.5) * 0.1f);
        int real = realRows < 0 ? rows : realRows;
        var row = new ushort[cols];
        for (int r = 0; r < real; r++)
        {
            int off = rng.Next(pattern.Length - 1);
            for (int c = 0; c < cols; c++) row[c] = pattern[(off + c) & 4095];
            w.SetBf16Row(r, row);
        }
        return w;
    }
}
