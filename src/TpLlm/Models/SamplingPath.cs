namespace TpLlm.Models;

/// <summary>How a step picks its tokens from the LM head's output.</summary>
public enum SamplingPath
{
    /// <summary>Each rank reduces its own vocabulary slice <c>[B, V_pad/tp]</c>; the vocabulary is never gathered (needs the column-parallel head).</summary>
    VocabParallel,

    /// <summary>Full logits <c>[B, V]</c> are gathered on every rank, and every rank samples from them.</summary>
    Gathered,

    /// <summary>Full logits are gathered on rank 0 only (half an all-gather's traffic), which samples and broadcasts the tokens; logprobs are rank 0's only.</summary>
    GatheredToRoot,
}
