namespace TpLlm.Models;

/// <summary>
/// How one layer attends: over every earlier position (<see cref="SlidingWindow"/> 0), or over a sliding window — a
/// query at position i sees key j when 0 ≤ i − j &lt; window — and with which rotary embedding.
/// </summary>
/// <param name="SlidingWindow">Window length, or 0 for global attention.</param>
/// <param name="Rope">The layer's RoPE (Gemma 3's sliding layers use their own base and no scaling).</param>
public readonly record struct LayerAttention(int SlidingWindow, RopeParameters Rope)
{
    /// <summary>True for a sliding-window layer.</summary>
    public bool Slides => SlidingWindow > 0;
}
