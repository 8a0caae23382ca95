using TpLlm.Checkpoints;

namespace TpLlm.Tensors;

/// <summary>
/// One rank's weight matrix <c>[Rows, Cols]</c> in some <see cref="IWeightFormat"/>: its storage, how checkpoint rows
/// fill it, and its kernel <c>y[t, n] = Σ_k x[t, k] · W[n, k]</c> over a range of rows (which <see cref="MatMul"/>
/// spreads over threads). Storage is allocated once, pinned and 64-byte aligned.
/// </summary>
public abstract unsafe class WeightMatrix
{
    /// <summary>Rows per panel: kernels work on 16 output rows at a time, and thread slices are whole pairs of panels.</summary>
    public const int Panel = 16;

    /// <summary>Creates the shape.</summary>
    protected WeightMatrix(int rows, int cols)
    {
        if (rows < 0 || cols < 1) throw new ArgumentOutOfRangeException(nameof(rows), $"weight matrix [{rows}, {cols}] must have rows ≥ 0 and cols ≥ 1");
        Rows = rows;
        Cols = cols;
    }

    /// <summary>Output rows.</summary>
    public int Rows { get; }

    /// <summary>Input columns.</summary>
    public int Cols { get; }

    /// <summary>The storage format.</summary>
    public abstract IWeightFormat Format { get; }

    /// <summary>Bytes the kernel reads from memory per use of the whole matrix (its storage, scales included): the roofline's weight bytes.</summary>
    public abstract long ByteSize { get; }

    /// <summary>Width of the activation rows the kernel reads: <see cref="Cols"/>, or more, zero-padded by <see cref="MatMul"/>.</summary>
    public virtual int InputStride => Cols;

    /// <summary>Rows padded to whole panels.</summary>
    public int PaddedRows => (Rows + Panel - 1) / Panel * Panel;

    /// <summary>
    /// Fills row <paramref name="r"/> from <see cref="Cols"/> checkpoint elements of <paramref name="dtype"/>
    /// (<paramref name="where"/> names the tensor in errors).
    /// </summary>
    public abstract void SetRow(int r, ReadOnlySpan<byte> src, DType dtype, string where);

    /// <summary>Row <paramref name="r"/> as f32 (dequantized) into <paramref name="dst"/> (<see cref="Cols"/> elements).</summary>
    public abstract void RowToF32(int r, Span<float> dst);

    /// <summary>Element (r, c) as f32 — for tests and lookups.</summary>
    public virtual float Get(int r, int c)
    {
        var row = new float[Cols];
        RowToF32(r, row);
        return row[c];
    }

    /// <summary>
    /// Rows [<paramref name="n0"/>, <paramref name="n1"/>) of <c>y = x·Wᵀ</c> on <paramref name="path"/>, serially:
    /// <paramref name="x"/> is <c>[T, InputStride]</c> (zero past <see cref="Cols"/>), <paramref name="y"/> <c>[T, ldy]</c>;
    /// n0 is a multiple of 2 · <see cref="Panel"/>. Formats with integer products take AVX-VNNI's on the 256-bit path
    /// when <paramref name="vnni"/>.
    /// </summary>
    public abstract void Multiply(KernelPath path, bool vnni, float* x, int T, int n0, int n1, float* y, int ldy);

    /// <summary>Throws unless <paramref name="r"/> is a row and <paramref name="length"/> bytes hold <see cref="Cols"/> elements of <paramref name="dtype"/>.</summary>
    protected void CheckRow(int r, int length, DType dtype)
    {
        if ((uint)r >= (uint)Rows || length < dtype.Bytes(Cols))
            throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of [{Rows}, {Cols}] from {length} bytes of {dtype}");
    }
}
