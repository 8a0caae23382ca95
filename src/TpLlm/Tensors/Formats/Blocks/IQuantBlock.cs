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

    /// <summary>Columns 2·<paramref name="pair"/> and 2·<paramref name="pair"/> + 1 of the 16 rows, as f32 levels (unscaled).</summary>
    static abstract void Widen(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd);

    /// <summary>
    /// The stored values of a column pair as f32, before <see cref="Offset"/> is taken off (q4's nibbles 0–15; int8's
    /// levels themselves): the decode kernel subtracts the offset once per block, as offset · Σx, instead of per weight.
    /// </summary>
    static abstract void WidenStored(byte* levels, int pair, out Vector512<float> even, out Vector512<float> odd);

    /// <summary>Level = stored value − Offset (8 for q4, 0 for int8).</summary>
    static abstract int Offset { get; }

    /// <summary>The level of (<paramref name="row"/>, <paramref name="col"/>) of the block.</summary>
    static abstract int Level(byte* levels, int row, int col);

    /// <summary>Stores row <paramref name="row"/>'s 32 levels.</summary>
    static abstract void SetLevels(byte* levels, int row, ReadOnlySpan<sbyte> values);

    /// <summary>Quantizes 32 values into <paramref name="levels"/>; returns the f16 bits of their scale (value ≈ scale · level).</summary>
    static abstract ushort Quantize(ReadOnlySpan<float> group, Span<sbyte> levels);
}
