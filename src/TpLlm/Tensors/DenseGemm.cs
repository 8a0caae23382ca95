using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors;

/// <summary>
/// Serial kernels for f32 and int8 weights over rows [n0, n1): <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c>
/// (times the row's scale for int8). Activations <c>x [T, Kp]</c> are in natural order, zero-padded.
/// </summary>
public static unsafe class DenseGemm
{
    /// <summary>f32 weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunF32(float* x, int T, int Kp, float* w, int n0, int n1, float* y, int ldy)
    {
        for (int n = n0; n < n1; n++)
        {
            var row = new ReadOnlySpan<float>(w + (long)n * Kp, Kp);
            for (int t = 0; t < T; t++)
                y[(long)t * ldy + n] = TensorPrimitives.Dot(row, new ReadOnlySpan<float>(x + (long)t * Kp, Kp));
        }
    }

    /// <summary>int8 weights with per-row scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunInt8(KernelPath path, float* x, int T, int Kp, sbyte* w, float[] scales, int n0, int n1, float* y, int ldy)
    {
        bool avx2 = path != KernelPath.Scalar && Avx2.IsSupported;
        for (int n = n0; n < n1; n++)
        {
            sbyte* row = w + (long)n * Kp;
            float s = scales[n];
            for (int t = 0; t < T; t++)
            {
                float* xt = x + (long)t * Kp;
                float acc;
                if (avx2)
                {
                    var a = Vector256<float>.Zero;
                    for (int k = 0; k < Kp; k += 8)
                    {
                        var wi = Avx2.ConvertToVector256Int32(row + k);
                        a = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(wi), Vector256.Load(xt + k), a);
                    }
                    acc = Vector256.Sum(a);
                }
                else
                {
                    acc = 0;
                    for (int k = 0; k < Kp; k++) acc += row[k] * xt[k];
                }
                y[(long)t * ldy + n] = acc * s;
            }
        }
    }
}
