using System.Runtime.Intrinsics;

namespace TpLlm.Tensors;

/// <summary>Which instruction set a kernel uses. Tests force each one; production takes <see cref="KernelPaths.Best"/>.</summary>
public enum KernelPath
{
    /// <summary>Portable scalar code.</summary>
    Scalar,
    /// <summary>256-bit vectors (AVX2).</summary>
    Vector256,
    /// <summary>512-bit vectors (AVX-512).</summary>
    Vector512,
}

/// <summary>Detects the best <see cref="KernelPath"/> of this machine.</summary>
public static class KernelPaths
{
    /// <summary>The widest path the hardware accelerates.</summary>
    /// <remarks>
    /// AVX-512 counts even where the runtime reports <c>Vector512.IsHardwareAccelerated</c> false
    /// (it does on CPUs where it prefers 256-bit code): the JIT still emits AVX-512 for Vector512
    /// when the ISA is present, and the bf16 kernels gain from it (measured in docs/performance.md).
    /// </remarks>
    public static KernelPath Best { get; } =
        Vector512.IsHardwareAccelerated || System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? KernelPath.Vector512 :
        Vector256.IsHardwareAccelerated ? KernelPath.Vector256 : KernelPath.Scalar;

    /// <summary>True when this machine can run <paramref name="path"/>.</summary>
    public static bool IsSupported(KernelPath path) => path <= Best;

    /// <summary>
    /// True when the processor has AVX-VNNI (<c>vpdpbusd</c>: four byte products summed into each 32-bit lane in one
    /// instruction), which the int8 format's products take on the 256-bit path in place of byte and word multiply-adds.
    /// </summary>
    public static bool Vnni => System.Runtime.Intrinsics.X86.AvxVnni.IsSupported;
}
