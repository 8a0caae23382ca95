namespace TpLlm.Tests;

/// <summary>Log-probabilities from the fixtures' reference logits, computed in double.</summary>
internal static class ReferenceLogprobs
{
    /// <summary>log softmax(<paramref name="row"/>)[<paramref name="id"/>].</summary>
    public static double At(ReadOnlySpan<float> row, int id)
    {
        double max = double.MinValue, sum = 0;
        foreach (var x in row) max = Math.Max(max, x);
        foreach (var x in row) sum += Math.Exp(x - max);
        return row[id] - max - Math.Log(sum);
    }
}
