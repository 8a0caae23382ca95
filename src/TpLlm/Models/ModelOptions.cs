using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>How a rank builds its part of a model.</summary>
public sealed record ModelOptions
{
    /// <summary>Padding alignment of the vocabulary shards (V_pad = roundUp(V, tp · align)).</summary>
    public int VocabAlign { get; init; } = 1;

    /// <summary>
    /// The format the decoder's linear layers are quantized to while they load (<see cref="WeightFormats.Quantized"/>);
    /// null keeps the checkpoint's precision. The LM head and the embeddings never are.
    /// </summary>
    public IWeightFormat? Quantization { get; init; }

    /// <summary>How the LM head is split.</summary>
    public LmHeadStrategy HeadStrategy { get; init; } = LmHeadStrategy.ColumnParallel;

    /// <summary>Sequences that can be in flight at once (KV-cache slots).</summary>
    public int MaxSequences { get; init; } = 1;

    /// <summary>Context length per sequence; 0 = the model's max_position_embeddings (capped at 4096).</summary>
    public int MaxContext { get; init; }

    /// <summary>Kernel threads per rank; 0 = cores / tp (at least 1).</summary>
    public int ComputeThreads { get; init; }

    /// <summary>
    /// Sliding-window layers keep only their window (plus <see cref="KvCache.RingChunk"/> − 1 positions) in a ring, the
    /// point of sliding windows: less memory, and attention over the window only. Off, they keep every position like a
    /// global layer and mask the rest (for comparison).
    /// </summary>
    public bool SlidingWindowRings { get; init; } = true;

    /// <summary>Kernel instruction set; null = the best this CPU has.</summary>
    public TpLlm.Tensors.KernelPath? KernelPath { get; init; }
}
