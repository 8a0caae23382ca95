using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TpLlm.Tensors;

/// <summary>
/// Serial bf16-weight × f32-activation kernels over a range of output rows:
/// <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c> for n in [n0, n1), accumulating in f32.
/// <c>xp</c> is the packed activation <c>[T, Kp]</c> (see <see cref="ActivationPacking"/>),
/// <c>w</c> the weight <c>[N, Kp]</c>, <c>y</c> the output <c>[T, ldy]</c>.
/// </summary>
public static unsafe class Bf16Gemm
{
    /// <summary>Runs rows [n0, n1) on <paramref name="path"/>.</summary>
    public static void Run(KernelPath path, float* xp, int T, int Kp, ushort* w, int n0, int n1, float* y, int ldy)
    {
        switch (path)
        {
            case KernelPath.Vector512: Run512(xp, T, Kp, w, n0, n1, y, ldy); break;
            case KernelPath.Vector256: Run256(xp, T, Kp, w, n0, n1, y, ldy); break;
            default: RunScalar(xp, T, Kp, w, n0, n1, y, ldy); break;
        }
    }

    private static void RunScalar(float* xp, int T, int Kp, ushort* w, int n0, int n1, float* y, int ldy)
    {
        for (int n = n0; n < n1; n++)
        {
            ushort* row = w + (long)n * Kp;
            for (int t = 0; t < T; t++)
            {
                float* x = xp + (long)t * Kp;
                float acc = 0;
                for (int k = 0; k < Kp; k++) acc += Bf16.ToF32(row[k]) * x[k];
                y[(long)t * ldy + n] = acc;
            }
        }
    }

    // ---- AVX-512: 32 bf16 per load → 16 even + 16 odd f32 lanes ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Widen512(ushort* p, out Vector512<float> even, out Vector512<float> odd)
    {
        var u = Vector512.Load((uint*)p);
        even = (u << 16).AsSingle();
        odd = (u & Vector512.Create(0xFFFF0000u)).AsSingle();
    }

    private static void Run512(float* xp, int T, int Kp, ushort* w, int n0, int n1, float* y, int ldy)
    {
        int n = n0;
        for (; n + 4 <= n1; n += 4)
        {
            int t = 0;
            for (; t + 4 <= T; t += 4) Tile4x4_512(xp + (long)t * Kp, Kp, w + (long)n * Kp, y + (long)t * ldy + n, ldy);
            for (; t < T; t++) Tile4x1_512(xp + (long)t * Kp, Kp, w + (long)n * Kp, y + (long)t * ldy + n);
        }
        for (; n < n1; n++)
            for (int t = 0; t < T; t++) y[(long)t * ldy + n] = Dot512(xp + (long)t * Kp, Kp, w + (long)n * Kp);
    }

    private static float Dot512(float* x, int Kp, ushort* w)
    {
        var acc = Vector512<float>.Zero;
        for (int k = 0; k < Kp; k += 32)
        {
            Widen512(w + k, out var e, out var o);
            acc = Vector512.FusedMultiplyAdd(e, Vector512.Load(x + k), acc);
            acc = Vector512.FusedMultiplyAdd(o, Vector512.Load(x + k + 16), acc);
        }
        return Vector512.Sum(acc);
    }

    private static void Tile4x1_512(float* x, int Kp, ushort* w, float* y)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        ushort* w1 = w + Kp, w2 = w1 + Kp, w3 = w2 + Kp;
        for (int k = 0; k < Kp; k += 32)
        {
            var xe = Vector512.Load(x + k);
            var xo = Vector512.Load(x + k + 16);
            Widen512(w + k, out var e, out var o);
            a0 = Vector512.FusedMultiplyAdd(e, xe, a0); a0 = Vector512.FusedMultiplyAdd(o, xo, a0);
            Widen512(w1 + k, out e, out o);
            a1 = Vector512.FusedMultiplyAdd(e, xe, a1); a1 = Vector512.FusedMultiplyAdd(o, xo, a1);
            Widen512(w2 + k, out e, out o);
            a2 = Vector512.FusedMultiplyAdd(e, xe, a2); a2 = Vector512.FusedMultiplyAdd(o, xo, a2);
            Widen512(w3 + k, out e, out o);
            a3 = Vector512.FusedMultiplyAdd(e, xe, a3); a3 = Vector512.FusedMultiplyAdd(o, xo, a3);
        }
        y[0] = Vector512.Sum(a0); y[1] = Vector512.Sum(a1); y[2] = Vector512.Sum(a2); y[3] = Vector512.Sum(a3);
    }

    // 4 weight rows × 4 tokens: each widened weight block is used 4 times.
    private static void Tile4x4_512(float* x, int Kp, ushort* w, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        float* x1 = x + Kp, x2 = x1 + Kp, x3 = x2 + Kp;
        ushort* w1 = w + Kp, w2 = w1 + Kp, w3 = w2 + Kp;
        for (int k = 0; k < Kp; k += 32)
        {
            Widen512(w + k, out var e0, out var o0);
            Widen512(w1 + k, out var e1, out var o1);
            Widen512(w2 + k, out var e2, out var o2);
            Widen512(w3 + k, out var e3, out var o3);
            var xe = Vector512.Load(x + k); var xo = Vector512.Load(x + k + 16);
            a00 = Fma2(e0, o0, xe, xo, a00); a10 = Fma2(e1, o1, xe, xo, a10); a20 = Fma2(e2, o2, xe, xo, a20); a30 = Fma2(e3, o3, xe, xo, a30);
            xe = Vector512.Load(x1 + k); xo = Vector512.Load(x1 + k + 16);
            a01 = Fma2(e0, o0, xe, xo, a01); a11 = Fma2(e1, o1, xe, xo, a11); a21 = Fma2(e2, o2, xe, xo, a21); a31 = Fma2(e3, o3, xe, xo, a31);
            xe = Vector512.Load(x2 + k); xo = Vector512.Load(x2 + k + 16);
            a02 = Fma2(e0, o0, xe, xo, a02); a12 = Fma2(e1, o1, xe, xo, a12); a22 = Fma2(e2, o2, xe, xo, a22); a32 = Fma2(e3, o3, xe, xo, a32);
            xe = Vector512.Load(x3 + k); xo = Vector512.Load(x3 + k + 16);
            a03 = Fma2(e0, o0, xe, xo, a03); a13 = Fma2(e1, o1, xe, xo, a13); a23 = Fma2(e2, o2, xe, xo, a23); a33 = Fma2(e3, o3, xe, xo, a33);
        }
        Store4(y, Vector512.Sum(a00), Vector512.Sum(a10), Vector512.Sum(a20), Vector512.Sum(a30));
        Store4(y + ldy, Vector512.Sum(a01), Vector512.Sum(a11), Vector512.Sum(a21), Vector512.Sum(a31));
        Store4(y + 2L * ldy, Vector512.Sum(a02), Vector512.Sum(a12), Vector512.Sum(a22), Vector512.Sum(a32));
        Store4(y + 3L * ldy, Vector512.Sum(a03), Vector512.Sum(a13), Vector512.Sum(a23), Vector512.Sum(a33));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma2(Vector512<float> e, Vector512<float> o, Vector512<float> xe, Vector512<float> xo, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(o, xo, Vector512.FusedMultiplyAdd(e, xe, acc));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* y, float a, float b, float c, float d)
    {
        y[0] = a; y[1] = b; y[2] = c; y[3] = d;
    }

    // ---- AVX2: 16 bf16 per load → 8 even + 8 odd f32 lanes; one token at a time ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Widen256(ushort* p, out Vector256<float> even, out Vector256<float> odd)
    {
        var u = Vector256.Load((uint*)p);
        even = (u << 16).AsSingle();
        odd = (u & Vector256.Create(0xFFFF0000u)).AsSingle();
    }

    private static void Run256(float* xp, int T, int Kp, ushort* w, int n0, int n1, float* y, int ldy)
    {
        for (int t = 0; t < T; t++)
        {
            float* x = xp + (long)t * Kp;
            int n = n0;
            for (; n + 2 <= n1; n += 2)
            {
                Vector256<float> a0 = default, a1 = default;
                ushort* r0 = w + (long)n * Kp, r1 = r0 + Kp;
                for (int k = 0; k < Kp; k += 16)
                {
                    var xe = Vector256.Load(x + k); var xo = Vector256.Load(x + k + 8);
                    Widen256(r0 + k, out var e, out var o);
                    a0 = Vector256.FusedMultiplyAdd(o, xo, Vector256.FusedMultiplyAdd(e, xe, a0));
                    Widen256(r1 + k, out e, out o);
                    a1 = Vector256.FusedMultiplyAdd(o, xo, Vector256.FusedMultiplyAdd(e, xe, a1));
                }
                y[(long)t * ldy + n] = Vector256.Sum(a0);
                y[(long)t * ldy + n + 1] = Vector256.Sum(a1);
            }
            for (; n < n1; n++)
            {
                var a = Vector256<float>.Zero;
                ushort* r = w + (long)n * Kp;
                for (int k = 0; k < Kp; k += 16)
                {
                    Widen256(r + k, out var e, out var o);
                    a = Vector256.FusedMultiplyAdd(o, Vector256.Load(x + k + 8), Vector256.FusedMultiplyAdd(e, Vector256.Load(x + k), a));
                }
                y[(long)t * ldy + n] = Vector256.Sum(a);
            }
        }
    }
}
