using System.Diagnostics;
using System.Runtime.Intrinsics;
using TpLlm.Tensors;

namespace TpLlm.Cli.Bench;

/// <summary>The machine's limits, measured in the same run as the benchmark they judge.</summary>
/// <param name="ReadGBps">Streaming read bandwidth with every core reading (GB/s, 10⁹ bytes).</param>
/// <param name="PeakGflops">f32 FMA throughput of every core (GFLOP/s).</param>
/// <param name="Threads">Threads used.</param>
public sealed record Roofline(double ReadGBps, double PeakGflops, int Threads)
{
    /// <summary>Measures both limits with <paramref name="threads"/> threads.</summary>
    public static unsafe Roofline Measure(int threads)
    {
        using var pool = new ComputePool(threads);
        // read bandwidth: sum a 1 GiB buffer, best of 5
        const int n = 1 << 28;
        var buf = GC.AllocateArray<float>(n, pinned: true);
        for (int i = 0; i < n; i += 1024) buf[i] = 1;
        var sums = new float[threads * 16];
        double best = double.MaxValue;
        fixed (float* p = buf)
        {
            float* bp = p;
            Action<int, int> read = (part, parts) =>
            {
                var (s, e) = ComputePool.Slice(n, part, parts, 64);
                // two streams, one 64-byte line of each per step, prefetched 2 KB ahead as the kernels read weights:
                // the probe must read at least as fast as they can, or a kernel would show more than 100 % of the limit
                var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
                int half = (e - s) / 2 / 32 * 32;
                float* p0 = bp + s, p1 = p0 + half;
                for (int i = 0; i < half; i += 32)
                {
                    if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
                    {
                        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p0 + i + 512);
                        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p1 + i + 512);
                    }
                    a0 += Vector512.Load(p0 + i); a1 += Vector512.Load(p0 + i + 16);
                    a2 += Vector512.Load(p1 + i); a3 += Vector512.Load(p1 + i + 16);
                }
                sums[part * 16] = Vector512.Sum(a0 + a1 + a2 + a3);
            };
            for (int r = 0; r < 6; r++)
            {
                long t0 = Stopwatch.GetTimestamp();
                pool.Run(read);
                double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (r > 0) best = Math.Min(best, s);
            }
        }
        double gbps = n * 4.0 / best / 1e9; // slices are multiples of 64 floats, so the two halves cover all
        // FMA peak: 12 independent chains per thread
        const int iters = 20_000_000;
        Action<int, int> fma = (part, parts) =>
        {
            var x = Vector512.Create(1.0000001f); var y = Vector512.Create(0.999999f);
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
            Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
            for (int i = 0; i < iters; i++)
            {
                c0 = Vector512.FusedMultiplyAdd(x, y, c0); c1 = Vector512.FusedMultiplyAdd(x, y, c1); c2 = Vector512.FusedMultiplyAdd(x, y, c2);
                c3 = Vector512.FusedMultiplyAdd(x, y, c3); c4 = Vector512.FusedMultiplyAdd(x, y, c4); c5 = Vector512.FusedMultiplyAdd(x, y, c5);
                c6 = Vector512.FusedMultiplyAdd(x, y, c6); c7 = Vector512.FusedMultiplyAdd(x, y, c7); c8 = Vector512.FusedMultiplyAdd(x, y, c8);
                c9 = Vector512.FusedMultiplyAdd(x, y, c9); c10 = Vector512.FusedMultiplyAdd(x, y, c10); c11 = Vector512.FusedMultiplyAdd(x, y, c11);
            }
            sums[part * 16] = Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
        };
        double bestF = double.MaxValue;
        for (int r = 0; r < 3; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            pool.Run(fma);
            bestF = Math.Min(bestF, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        double lanes = Vector512.IsHardwareAccelerated || System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 16 : 8; // Vector512 runs as 2×256 without AVX-512
        double gflops = (double)iters * 12 * lanes * 2 * threads / bestF / 1e9;
        GC.KeepAlive(sums);
        return new Roofline(gbps, gflops, threads);
    }

    /// <summary>
    /// Measures the limits again after a benchmark and reports them on <paramref name="err"/>, with a warning when
    /// either moved by more than 10 % from this measurement: on a shared machine the neighbours' load changes both
    /// the kernels' times and the limits they are judged against, so such a run's percentages are unreliable.
    /// </summary>
    public Roofline Recheck(TextWriter err)
    {
        var after = Measure(Threads);
        err.WriteLine($"measured after: read bandwidth {after.ReadGBps:F1} GB/s, f32 FMA peak {after.PeakGflops:F0} GFLOP/s");
        double bw = Math.Abs(after.ReadGBps / ReadGBps - 1), fma = Math.Abs(after.PeakGflops / PeakGflops - 1);
        if (bw > 0.1 || fma > 0.1)
            err.WriteLine($"warning: the machine's limits moved during the run (bandwidth {ReadGBps:F1} → {after.ReadGBps:F1} GB/s, " +
                $"FMA peak {PeakGflops:F0} → {after.PeakGflops:F0} GFLOP/s): other load shared the cores; rerun for percentages you can trust");
        return after;
    }

    /// <summary>Roofline time of moving <paramref name="bytes"/> and doing <paramref name="flops"/>: the larger of the two bounds.</summary>
    public double Seconds(double bytes, double flops) => Math.Max(bytes / (ReadGBps * 1e9), flops / (PeakGflops * 1e9));
}
