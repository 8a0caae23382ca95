using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>The LM head: final hidden states <c>[T, H]</c> → logits over the vocabulary. A head owns its weight and the kernels it runs on.</summary>
public interface ILmHead
{
    /// <summary>The split in use.</summary>
    LmHeadStrategy Strategy { get; }

    /// <summary>Real vocabulary size V (the width of gathered logits).</summary>
    int VocabSize { get; }

    /// <summary>This rank's weight (never quantized).</summary>
    WeightMatrix Weight { get; }

    /// <summary>Full logits <paramref name="logits"/> <c>[T, V]</c> on every rank, padding removed.</summary>
    void Forward(ReadOnlySpan<float> hidden, int T, Span<float> logits);
}
