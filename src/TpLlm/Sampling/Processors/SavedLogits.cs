namespace TpLlm.Sampling.Processors;

/// <summary>An undo log of single logits a processor changed: saved before each change, put back in reverse (a logit changed twice gets its raw value).</summary>
internal sealed class SavedLogits
{
    private readonly List<(int Index, float Value)> _saved = [];

    /// <summary>Room for <paramref name="entries"/> saves, made when a sequence starts so that no step allocates.</summary>
    public void Reserve(int entries) => _saved.EnsureCapacity(entries);

    /// <summary>Saves <c>logits[index]</c> and returns a reference to it, to change.</summary>
    public ref float Save(Span<float> logits, int index)
    {
        _saved.Add((index, logits[index]));
        return ref logits[index];
    }

    /// <summary>Puts back every saved logit and forgets them.</summary>
    public void Restore(Span<float> logits)
    {
        for (int k = _saved.Count - 1; k >= 0; k--) logits[_saved[k].Index] = _saved[k].Value;
        _saved.Clear();
    }
}
