namespace TpLlm.Sampling;

/// <summary>
/// A small deterministic random stream (SplitMix64), identical on every rank and process and
/// across .NET versions, so ranks draw the same numbers without talking.
/// </summary>
public sealed class SplitMix64
{
    private ulong _state;

    /// <summary>Starts the stream at <paramref name="seed"/>.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
