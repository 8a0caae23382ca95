using System.Runtime.Intrinsics;

namespace TpLlm.Tensors.Panels;

/// <summary>
/// An element type of panel storage <c>[ceil(K/2)][16 rows][2 columns]</c>: how one column pair of a 16-row panel
/// is loaded as f32. A type parameter of the tiles (static members, so the JIT compiles each tile once per element
/// type, with the loads inlined).
/// </summary>
internal unsafe interface IPanelWeights
{
    /// <summary>Bytes of one column pair of a 16-row panel.</summary>
    static abstract int PairBytes { get; }

    /// <summary>Columns k (even) and k + 1 (odd) of the panel's 16 rows; <paramref name="mask"/> is 0xFFFF0000 in every lane (bf16's odd column).</summary>
    static abstract void Load(byte* pair, Vector512<uint> mask, out Vector512<float> even, out Vector512<float> odd);

    /// <summary>Column k alone (the last column of an odd K).</summary>
    static abstract Vector512<float> LoadEven(byte* pair);

    /// <summary>Columns k and k + 1 of rows [8·<paramref name="half"/>, 8·<paramref name="half"/> + 8).</summary>
    static abstract void Load(byte* pair, int half, out Vector256<float> even, out Vector256<float> odd);

    /// <summary>Element (<paramref name="row"/>, k + <paramref name="odd"/>) of the pair.</summary>
    static abstract float Get(byte* pair, int row, int odd);
}
