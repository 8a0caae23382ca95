using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Formats.Blocks;

/// <summary>
/// The quantized levels of one block of <see cref="BlockQuantizedMatrix{TQ}"/>: 16 rows × 32 input columns that share a
/// scale per row. A type parameter of the matrix and its kernels (static members: the JIT compiles each kernel once
/// per format, with the widening inlined).
/// </summary>
internal unsafe interface IQuantBlock
{
    /// <summary>The format's name (<c>--quantize</c>).</summary>
    static abstract string Name { get; }

    /// <summary>Bytes of the levels of 16 rows × 32 columns.</summary>
    static abstract int LevelBytes { get; }

    /// <summary>
    /// How <see cref="ActivationQuantizer"/> scales this format's int8 activations: by the largest |x₀| + |x₁| of a column
    /// pair (<c>true</c>: stored values up to 255 meet them in byte multiply-adds without saturating) or by the largest |x|.
    /// </summary>
    static abstract bool PairBoundActivations { get; }

    /// <summary>
    /// Σ over the block's 32 columns of stored value × <paramref name="xq"/> (the group's quantized activations) for each
    /// of the 16 rows, in integers (the stored value is the level + <see cref="Offset"/>: q4's nibbles 0–15, int8's
    /// bytes 0–255); <see cref="QuantizedProduct{TQ}"/> takes Offset · Σxq off once per block.
    /// </summary>
    static abstract Vector512<int> Dot512(byte* levels, byte* xq);

    /// <summary>
    /// <see cref="Dot512"/> for four tokens' activations at once (<paramref name="xq"/> + t · <paramref name="ldq"/>), each
    /// slab of levels unpacked once for the four.
    /// </summary>
    static abstract void Dot512x4(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3);

    /// <summary>
    /// <see cref="Dot512"/> for eight tokens' activations at once: a format whose loads and unpacking weigh little
    /// against its multiply-adds (int8's bytes) shares each load across the eight; others may run <see cref="Dot512x4"/> twice.
    /// </summary>
    static abstract void Dot512x8(byte* levels, byte* xq, int ldq, out Vector512<int> s0, out Vector512<int> s1, out Vector512<int> s2, out Vector512<int> s3,
        out Vector512<int> s4, out Vector512<int> s5, out Vector512<int> s6, out Vector512<int> s7);

    /// <summary><see cref="Dot512"/> for rows 8·<paramref name="half"/> to 8·<paramref name="half"/> + 7, in 256-bit vectors.</summary>
    static abstract Vector256<int> Dot256(byte* levels, byte* xq, int half);

    /// <summary>
    /// <see cref="Dot256"/> for four tokens' activations at once (<paramref name="xq"/> + t · <paramref name="ldq"/>), each
    /// load of levels shared by the four; on AVX-VNNI's products where <paramref name="vnni"/> and the format gains from them
    /// (the caller checks the processor has them).
    /// </summary>
    static abstract void Dot256x4(byte* levels, byte* xq, int ldq, int half, bool vnni, out Vector256<int> s0, out Vector256<int> s1, out Vector256<int> s2, out Vector256<int> s3);

    /// <summary>True when <see cref="Dot256x4"/> takes AVX-VNNI's products where allowed.</summary>
    static abstract bool TakesVnni { get; }

    /// <summary>Level = stored value − Offset (8 for q4, 128 for int8).</summary>
    static abstract int Offset { get; }

    /// <summary>The level of (<paramref name="row"/>, <paramref name="col"/>) of the block.</summary>
    static abstract int Level(byte* levels, int row, int col);

    /// <summary>Stores row <paramref name="row"/>'s 32 levels.</summary>
    static abstract void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values);

    /// <summary>The file block type whose numbers this format holds as they are (GGUF's Q8_0 for int8, Q4_0 for q4).</summary>
    static abstract Checkpoints.DType FileBlock { get; }

    /// <summary>Quantizes 32 values into <paramref name="levels"/>; returns the f16 bits of their scale (value ≈ scale · level).</summary>
    static abstract ushort Quantize(ReadOnlySpan<float> group, Span<sbyte> levels);

    /// <summary>
    /// Quantizes 16 consecutive groups (<c>[16·32]</c>) into <paramref name="scales"/> <c>[16]</c> and
    /// <paramref name="levels"/> <c>[16·32]</c>, as <see cref="Quantize"/> does each; a format whose search is a chain of
    /// dependent steps runs the sixteen side by side.
    /// </summary>
    static abstract void Quantize16(ReadOnlySpan<float> groups, Span<ushort> scales, Span<sbyte> levels);
}
