using System.Numerics;
using System.Runtime.CompilerServices;

namespace TpLlm.Tensors;

/// <summary>
/// The two inner loops of attention for the query heads that share one KV head (grouped-query attention), over a
/// KV cache laid out <c>[positions, stride]</c> with the KV head's <c>d</c> values at <c>offset</c> in each row.
/// Head dims are small (64–128), so a library call per cached position would cost more than its arithmetic: these
/// loops keep several independent FMA chains in flight and read each cached key and value once for up to four
/// query heads. Accumulates in f32.
/// </summary>
public static unsafe class AttentionMath
{
    /// <summary>
    /// <c>scores[h, j] = scale · q[h] · k_j</c> for the <paramref name="heads"/> query heads <c>q</c> <c>[heads, d]</c>
    /// and positions <c>j</c> in <c>[0, n)</c>, <c>n = scores.Length / heads</c>; <c>k_j</c> =
    /// <c>keys[j·stride + offset .. + d]</c>.
    /// </summary>
    public static void Scores(ReadOnlySpan<float> q, int heads, ReadOnlySpan<float> keys, int stride, int offset, float scale, Span<float> scores)
    {
        int d = Shape(q.Length, heads, "queries"), n = Shape(scores.Length, heads, "scores");
        Check(d, keys.Length, stride, offset, n);
        fixed (float* qp = q)
        fixed (float* kp = keys)
        fixed (float* sp = scores)
        {
            int h = 0;
            for (; h + 4 <= heads; h += 4) Scores4(qp + h * d, d, kp + offset, stride, scale, sp + (long)h * n, n);
            for (; h < heads; h++) Scores1(qp + h * d, d, kp + offset, stride, scale, sp + (long)h * n, n);
        }
    }

    /// <summary>
    /// <c>output[h] = Σ_j p[h, j] · v_j</c> for <paramref name="heads"/> heads, <c>p</c> <c>[heads, n]</c>, <c>output</c>
    /// <c>[heads, d]</c>; <c>v_j</c> = <c>values[j·stride + offset .. + d]</c>.
    /// </summary>
    public static void WeightedSum(ReadOnlySpan<float> p, int heads, ReadOnlySpan<float> values, int stride, int offset, Span<float> output)
    {
        int d = Shape(output.Length, heads, "outputs"), n = Shape(p.Length, heads, "weights");
        Check(d, values.Length, stride, offset, n);
        fixed (float* pp = p)
        fixed (float* vp = values)
        fixed (float* op = output)
        {
            int h = 0;
            for (; h + 4 <= heads; h += 4) Sum4(pp + (long)h * n, n, vp + offset, stride, op + h * d, d);
            for (; h < heads; h++) Sum1(pp + (long)h * n, n, vp + offset, stride, op + h * d, d);
        }
    }

    // four query heads: each key chunk is loaded once for four FMA chains
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores4(float* q, int d, float* k, int stride, float scale, float* s, long n)
    {
        int w = Vector<float>.Count, dv = d - d % w;
        float* q1 = q + d, q2 = q1 + d, q3 = q2 + d;
        for (long j = 0; j < n; j++, k += stride)
        {
            Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < dv; c += w)
            {
                var kc = Vector.Load(k + c);
                a0 = Vector.FusedMultiplyAdd(Vector.Load(q + c), kc, a0);
                a1 = Vector.FusedMultiplyAdd(Vector.Load(q1 + c), kc, a1);
                a2 = Vector.FusedMultiplyAdd(Vector.Load(q2 + c), kc, a2);
                a3 = Vector.FusedMultiplyAdd(Vector.Load(q3 + c), kc, a3);
            }
            float s0 = Vector.Sum(a0), s1 = Vector.Sum(a1), s2 = Vector.Sum(a2), s3 = Vector.Sum(a3);
            for (int c = dv; c < d; c++)
            {
                s0 += q[c] * k[c]; s1 += q1[c] * k[c]; s2 += q2[c] * k[c]; s3 += q3[c] * k[c];
            }
            s[j] = s0 * scale; s[n + j] = s1 * scale; s[2 * n + j] = s2 * scale; s[3 * n + j] = s3 * scale;
        }
    }

    // one query head: four keys at a time, four FMA chains
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores1(float* q, int d, float* k, int stride, float scale, float* s, long n)
    {
        int w = Vector<float>.Count, dv = d - d % w;
        long j = 0;
        for (; j + 4 <= n; j += 4, k += 4L * stride)
        {
            float* k1 = k + stride, k2 = k1 + stride, k3 = k2 + stride;
            Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < dv; c += w)
            {
                var qc = Vector.Load(q + c);
                a0 = Vector.FusedMultiplyAdd(qc, Vector.Load(k + c), a0);
                a1 = Vector.FusedMultiplyAdd(qc, Vector.Load(k1 + c), a1);
                a2 = Vector.FusedMultiplyAdd(qc, Vector.Load(k2 + c), a2);
                a3 = Vector.FusedMultiplyAdd(qc, Vector.Load(k3 + c), a3);
            }
            float s0 = Vector.Sum(a0), s1 = Vector.Sum(a1), s2 = Vector.Sum(a2), s3 = Vector.Sum(a3);
            for (int c = dv; c < d; c++)
            {
                s0 += q[c] * k[c]; s1 += q[c] * k1[c]; s2 += q[c] * k2[c]; s3 += q[c] * k3[c];
            }
            s[j] = s0 * scale; s[j + 1] = s1 * scale; s[j + 2] = s2 * scale; s[j + 3] = s3 * scale;
        }
        for (; j < n; j++, k += stride)
        {
            var acc = Vector<float>.Zero;
            for (int c = 0; c < dv; c += w) acc = Vector.FusedMultiplyAdd(Vector.Load(q + c), Vector.Load(k + c), acc);
            float s0 = Vector.Sum(acc);
            for (int c = dv; c < d; c++) s0 += q[c] * k[c];
            s[j] = s0 * scale;
        }
    }

    // four heads: each value chunk is loaded once for four FMA chains, one output vector of each head at a time
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sum4(float* p, long n, float* v, int stride, float* o, int d)
    {
        int w = Vector<float>.Count, dv = d - d % w;
        float* p1 = p + n, p2 = p1 + n, p3 = p2 + n;
        for (int c = 0; c < dv; c += w)
        {
            Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            float* vc = v + c;
            for (long j = 0; j < n; j++, vc += stride)
            {
                var vj = Vector.Load(vc);
                a0 = Vector.FusedMultiplyAdd(vj, new Vector<float>(p[j]), a0);
                a1 = Vector.FusedMultiplyAdd(vj, new Vector<float>(p1[j]), a1);
                a2 = Vector.FusedMultiplyAdd(vj, new Vector<float>(p2[j]), a2);
                a3 = Vector.FusedMultiplyAdd(vj, new Vector<float>(p3[j]), a3);
            }
            a0.Store(o + c); a1.Store(o + d + c); a2.Store(o + 2 * d + c); a3.Store(o + 3 * d + c);
        }
        for (int c = dv; c < d; c++)
        {
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (long j = 0; j < n; j++)
            {
                float vj = v[j * stride + c];
                a0 += p[j] * vj; a1 += p1[j] * vj; a2 += p2[j] * vj; a3 += p3[j] * vj;
            }
            o[c] = a0; o[d + c] = a1; o[2 * d + c] = a2; o[3 * d + c] = a3;
        }
    }

    // one head: four output vectors at a time over every position, four FMA chains
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sum1(float* p, long n, float* v, int stride, float* o, int d)
    {
        int w = Vector<float>.Count, dv = d - d % w, c = 0;
        for (; c + 4 * w <= dv; c += 4 * w)
        {
            Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            float* vc = v + c;
            for (long j = 0; j < n; j++, vc += stride)
            {
                var pj = new Vector<float>(p[j]);
                a0 = Vector.FusedMultiplyAdd(Vector.Load(vc), pj, a0);
                a1 = Vector.FusedMultiplyAdd(Vector.Load(vc + w), pj, a1);
                a2 = Vector.FusedMultiplyAdd(Vector.Load(vc + 2 * w), pj, a2);
                a3 = Vector.FusedMultiplyAdd(Vector.Load(vc + 3 * w), pj, a3);
            }
            a0.Store(o + c); a1.Store(o + c + w); a2.Store(o + c + 2 * w); a3.Store(o + c + 3 * w);
        }
        for (; c < dv; c += w)
        {
            var acc = Vector<float>.Zero;
            for (long j = 0; j < n; j++) acc = Vector.FusedMultiplyAdd(Vector.Load(v + j * stride + c), new Vector<float>(p[j]), acc);
            acc.Store(o + c);
        }
        for (; c < d; c++)
        {
            float acc = 0;
            for (long j = 0; j < n; j++) acc += p[j] * v[j * stride + c];
            o[c] = acc;
        }
    }

    private static int Shape(int length, int heads, string what)
    {
        if (heads < 1 || length % heads != 0) throw new ArgumentException($"{length} {what} do not split into {heads} heads");
        return length / heads;
    }

    private static void Check(int d, int length, int stride, int offset, int n)
    {
        if (offset < 0 || offset + d > stride)
            throw new ArgumentException($"a head of {d} values at offset {offset} does not fit rows of {stride}");
        if (n > 0 && (long)(n - 1) * stride + offset + d > length)
            throw new ArgumentException($"{n} positions of {stride} values need {(long)n * stride} floats; the cache holds {length}");
    }
}
