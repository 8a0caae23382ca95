namespace TpLlm.Tensors;

/// <summary>Weight-only int8 quantization with one scale per output row (max |w| / 127).</summary>
public static class Int8Quantizer
{
    /// <summary>Quantizes <paramref name="w"/> into a new <see cref="WeightFormat.Int8"/> matrix.</summary>
    public static WeightMatrix Quantize(WeightMatrix w)
    {
        var q = new WeightMatrix(w.Rows, w.Cols, WeightFormat.Int8);
        var row = new float[w.Cols];
        for (int r = 0; r < w.Rows; r++)
        {
            w.RowToF32(r, row);
            float max = 0;
            foreach (var v in row) max = Math.Max(max, Math.Abs(v));
            float scale = max > 0 ? max / 127f : 1f;
            q.Scales![r] = scale;
            var dst = q.Int8Row(r);
            for (int c = 0; c < row.Length; c++) dst[c] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale), -127, 127);
        }
        return q;
    }
}
