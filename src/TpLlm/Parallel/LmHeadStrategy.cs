namespace TpLlm.Parallel;

/// <summary>How the LM head <c>W[V, H]</c> is split across the tensor-parallel group.</summary>
public enum LmHeadStrategy
{
    /// <summary>Split the vocabulary: <c>W[V_pad/tp, H]</c> per rank, logits all-gathered (xLLM #1145).</summary>
    ColumnParallel,
    /// <summary>Split the hidden dimension: <c>W[V, H/tp]</c> per rank, partial logits all-reduced (the design #1145 replaced).</summary>
    RowParallel,
}
