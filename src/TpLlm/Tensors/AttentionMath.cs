using System.Numerics;
using System.Runtime.CompilerServices;

namespace TpLlm.Tensors;

/// <summary>
/// The two inner loops of attention for one head over a KV cache laid out <c>[positions, stride]</c>, the head's
/// <c>d</c> values at <c>offset</c> in each row. Head dims are small (64–128), so a library call per cached position
/// would cost more than its arithmetic; these loops keep the per-position work to a few vector ops.
/// Accumulates in f32.
/// </summary>
public static unsafe class AttentionMath
{
    /// <summary>
    /// <c>scores[j] = scale · q · k_j</c> for <c>j</c> in <c>[0, scores.Length)</c>, <c>k_j</c> =
    /// <c>keys[j·stride + offset .. + q.Length]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int stride, int offset, float scale, Span<float> scores)
    {
        int d = q.Length, n = scores.Length;
        Check(d, keys.Length, stride, offset, n);
        int w = Vector<float>.Count, dv = d - d % w;
        fixed (float* qp = q)
        fixed (float* kp = keys)
        fixed (float* sp = scores)
        {
            int j = 0;
            for (; j + 4 <= n; j += 4) // four keys at a time: four independent FMA chains instead of one
            {
                float* k0 = kp + (long)j * stride + offset, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
                Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                for (int c = 0; c < dv; c += w)
                {
                    var qc = Vector.Load(qp + c);
                    a0 = Vector.FusedMultiplyAdd(qc, Vector.Load(k0 + c), a0);
                    a1 = Vector.FusedMultiplyAdd(qc, Vector.Load(k1 + c), a1);
                    a2 = Vector.FusedMultiplyAdd(qc, Vector.Load(k2 + c), a2);
                    a3 = Vector.FusedMultiplyAdd(qc, Vector.Load(k3 + c), a3);
                }
                float s0 = Vector.Sum(a0), s1 = Vector.Sum(a1), s2 = Vector.Sum(a2), s3 = Vector.Sum(a3);
                for (int c = dv; c < d; c++)
                {
                    s0 += qp[c] * k0[c]; s1 += qp[c] * k1[c]; s2 += qp[c] * k2[c]; s3 += qp[c] * k3[c];
                }
                sp[j] = s0 * scale; sp[j + 1] = s1 * scale; sp[j + 2] = s2 * scale; sp[j + 3] = s3 * scale;
            }
            for (; j < n; j++)
            {
                float* k = kp + (long)j * stride + offset;
                var acc = Vector<float>.Zero;
                for (int c = 0; c < dv; c += w) acc = Vector.FusedMultiplyAdd(Vector.Load(qp + c), Vector.Load(k + c), acc);
                float s = Vector.Sum(acc);
                for (int c = dv; c < d; c++) s += qp[c] * k[c];
                sp[j] = s * scale;
            }
        }
    }

    /// <summary>
    /// <c>output = Σ_j p[j] · v_j</c> over <c>j</c> in <c>[0, p.Length)</c>, <c>v_j</c> =
    /// <c>values[j·stride + offset .. + output.Length]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightedSum(ReadOnlySpan<float> p, ReadOnlySpan<float> values, int stride, int offset, Span<float> output)
    {
        int d = output.Length, n = p.Length;
        Check(d, values.Length, stride, offset, n);
        int w = Vector<float>.Count, dv = d - d % w;
        fixed (float* pp = p)
        fixed (float* vp = values)
        fixed (float* op = output)
        {
            float* v0 = vp + offset;
            int c = 0;
            for (; c + 4 * w <= dv; c += 4 * w) // four output vectors at a time over every position: four FMA chains
            {
                Vector<float> a0 = Vector<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
                float* v = v0 + c;
                for (int j = 0; j < n; j++, v += stride)
                {
                    var pj = new Vector<float>(pp[j]);
                    a0 = Vector.FusedMultiplyAdd(Vector.Load(v), pj, a0);
                    a1 = Vector.FusedMultiplyAdd(Vector.Load(v + w), pj, a1);
                    a2 = Vector.FusedMultiplyAdd(Vector.Load(v + 2 * w), pj, a2);
                    a3 = Vector.FusedMultiplyAdd(Vector.Load(v + 3 * w), pj, a3);
                }
                a0.Store(op + c); a1.Store(op + c + w); a2.Store(op + c + 2 * w); a3.Store(op + c + 3 * w);
            }
            for (; c < dv; c += w)
            {
                var acc = Vector<float>.Zero;
                for (int j = 0; j < n; j++) acc = Vector.FusedMultiplyAdd(Vector.Load(v0 + (long)j * stride + c), new Vector<float>(pp[j]), acc);
                acc.Store(op + c);
            }
            for (c = dv; c < d; c++)
            {
                float acc = 0;
                for (int j = 0; j < n; j++) acc += pp[j] * v0[(long)j * stride + c];
                op[c] = acc;
            }
        }
    }

    private static void Check(int d, int length, int stride, int offset, int n)
    {
        if (offset < 0 || offset + d > stride)
            throw new ArgumentException($"a head of {d} values at offset {offset} does not fit rows of {stride}");
        if (n > 0 && (long)(n - 1) * stride + offset + d > length)
            throw new ArgumentException($"{n} positions of {stride} values need {(long)n * stride} floats; the cache holds {length}");
    }
}
