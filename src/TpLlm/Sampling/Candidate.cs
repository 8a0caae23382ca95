using System.Runtime.InteropServices;

namespace TpLlm.Sampling;

/// <summary>A (logit, global token id) pair exchanged between ranks: 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Candidate(float Value, int Id)
{
    /// <summary>A candidate that loses to every real one.</summary>
    public static readonly Candidate None = new(float.NegativeInfinity, int.MaxValue);

    /// <summary>Order of "more likely": larger value first, then lower id (argmax's tie rule). NaN ranks last.</summary>
    public bool Beats(Candidate other)
    {
        if (Value > other.Value) return true;
        if (Value < other.Value) return false;
        if (Value == other.Value) return Id < other.Id;
        return !float.IsNaN(Value) && float.IsNaN(other.Value) || float.IsNaN(Value) == float.IsNaN(other.Value) && Id < other.Id;
    }

    /// <summary>Sorts "most likely first".</summary>
    public static int CompareMostLikelyFirst(Candidate a, Candidate b) => a.Beats(b) ? -1 : b.Beats(a) ? 1 : 0;
}
