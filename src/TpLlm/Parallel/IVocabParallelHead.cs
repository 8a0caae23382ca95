using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// An LM head whose ranks each hold a slice of the vocabulary (<see cref="Partition"/>): the logits stay sharded
/// <c>[T, V_pad/tp]</c> for samplers and scorers that reduce them where they are, and are gathered only on request.
/// </summary>
public interface IVocabParallelHead : ILmHead
{
    /// <summary>The vocabulary split.</summary>
    VocabPartition Partition { get; }

    /// <summary>This rank's logits <paramref name="local"/> <c>[T, V_pad/tp]</c> (padding columns are 0, not masked).</summary>
    void ForwardLocal(ReadOnlySpan<float> hidden, int T, Span<float> local);

    /// <summary>Full logits <c>[T, V]</c> on <paramref name="root"/> only.</summary>
    void ForwardToRoot(ReadOnlySpan<float> hidden, int T, Span<float> logits, int root);
}
