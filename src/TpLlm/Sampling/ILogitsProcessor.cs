namespace TpLlm.Sampling;

/// <summary>
/// A change to the logits before a token is picked (vLLM's logits processors), kept per sequence slot and applied to one
/// rank's slice of the rows that sample, <c>[rows, V_pad/tp]</c> (or to gathered rows, with the whole vocabulary as the
/// slice). Every rank runs every processor over its own columns and sees every picked token, so no processor gathers the
/// vocabulary. <see cref="Restore"/> puts the raw logits back after the pick, so logprobs stay the model's (vLLM's default).
/// </summary>
public interface ILogitsProcessor
{
    /// <summary>Starts <paramref name="sequence"/> in <paramref name="slot"/>, forgetting the slot's last sequence.</summary>
    void Begin(int slot, SequenceSpec sequence);

    /// <summary>Whether <see cref="Apply"/> changes the rows of the sequence in <paramref name="slot"/> at this step.</summary>
    bool IsActive(int slot);

    /// <summary>Changes row <c>b</c> of <paramref name="logits"/> for the sequence in <c>rowSlots[b]</c>, for the first <paramref name="rows"/> rows.</summary>
    void Apply(Span<float> logits, ReadOnlySpan<int> rowSlots, int rows);

    /// <summary>Puts back what the last <see cref="Apply"/> changed.</summary>
    void Restore(Span<float> logits);

    /// <summary>Tells the processor that <paramref name="token"/> was just picked for the sequence in <paramref name="slot"/>.</summary>
    void Record(int slot, int token);
}
