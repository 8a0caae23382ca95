using TpLlm.Sampling;

namespace TpLlm.Tests.Sampling;

public class LocalReductionsTests
{
    // values drawn from a small set, so ties, NaN, ±∞ and all-NaN rows are common
    private static readonly float[] Pool = [float.NaN, float.NegativeInfinity, float.PositiveInfinity, -3f, -1f, 0f, -0f, 2.5f, 2.5000002f];

    [Fact]
    public void Vector_argmax_equals_the_scalar_one_at_every_length_and_on_ties_NaN_and_infinities()
    {
        var rng = new Random(7);
        for (int n = 0; n <= 70; n++)
            for (int trial = 0; trial < 60; trial++)
            {
                var row = new float[n];
                int mode = trial % 4;
                for (int i = 0; i < n; i++)
                    row[i] = mode switch
                    {
                        0 => Pool[rng.Next(Pool.Length)],
                        1 => rng.Next(4) == 0 ? float.NaN : float.NegativeInfinity,
                        2 => float.NaN,
                        _ => (float)rng.Next(-3, 3),
                    };
                int firstId = rng.Next(1000);
                Assert.Equal(LocalReductions.ArgmaxScalar(row, firstId), LocalReductions.Argmax(row, firstId));
            }
    }

    [Fact]
    public void Vector_argmax_finds_the_first_of_tied_maxima_in_a_long_row()
    {
        var row = new float[64_128];
        var rng = new Random(3);
        for (int i = 0; i < row.Length; i++) row[i] = (float)(rng.NextDouble() * 10 - 20);
        row[40_001] = 5; row[40_002] = 5; row[63_000] = 5; row[100] = float.NaN; row[^1] = 5;
        var best = LocalReductions.Argmax(row, 64_128);
        Assert.Equal(new Candidate(5, 64_128 + 40_001), best);
        Assert.Equal(LocalReductions.ArgmaxScalar(row, 64_128), best);
        row[40_001] = row[40_002] = row[63_000] = 0;
        Assert.Equal(new Candidate(5, 64_128 + row.Length - 1), LocalReductions.Argmax(row, 64_128)); // only in the overlapping tail
    }
}
