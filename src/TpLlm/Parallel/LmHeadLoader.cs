using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Tensors;

namespace TpLlm.Parallel;

/// <summary>
/// Builds a rank's LM head from a checkpoint, reading only the rank's rows (or columns).
/// The head is never quantized (<see cref="WeightFormats.Unquantized"/>: a quantized GGUF tensor is widened to bf16). With tied embeddings, or when <c>lm_head.weight</c> is absent,
/// it reads <c>model.embed_tokens.weight</c>. Tensors are looked up by exact name.
/// </summary>
public static class LmHeadLoader
{
    /// <summary>Exact name of an untied head.</summary>
    public const string HeadName = "lm_head.weight";

    /// <summary>Exact name of the token embedding.</summary>
    public const string EmbeddingName = "model.embed_tokens.weight";

    /// <summary>The tensor the head reads: the embedding when tied or when no head is stored.</summary>
    public static string SourceTensor(IWeightSource ck, bool tieWordEmbeddings) =>
        tieWordEmbeddings || !ck.Contains(HeadName) ? EmbeddingName : HeadName;

    /// <summary>Loads this rank's rows <c>[V_pad/tp, H]</c> of <paramref name="tensor"/>, zero-filling padding.</summary>
    public static WeightMatrix LoadVocabShard(WeightLoader loader, string tensor, VocabPartition partition, int rank, int hiddenSize) =>
        loader.LoadRows(tensor, partition.Start(rank), partition.ShardSize, partition.VocabSize, hiddenSize, WeightFormats.Unquantized);

    /// <summary>A column-parallel head over a vocab-parallel embedding's own shard (tied weights: one copy serves both).</summary>
    public static IVocabParallelHead Tied(WeightMatrix embeddingShard, VocabPartition partition, ICommunicator comm, MatMul mm, float? softcap) =>
        new ColumnParallelLmHead(embeddingShard, partition, comm, mm) { Softcap = softcap };

    /// <summary>Loads the head with <paramref name="strategy"/> for this rank of <paramref name="comm"/>, to run on <paramref name="mm"/>'s kernels.</summary>
    public static ILmHead Load(WeightLoader loader, bool tieWordEmbeddings, int vocabSize, int hiddenSize, ICommunicator comm, MatMul mm,
        LmHeadStrategy strategy = LmHeadStrategy.ColumnParallel, int align = 1, float? softcap = null)
    {
        string tensor = SourceTensor(loader.Source, tieWordEmbeddings);
        if (strategy == LmHeadStrategy.ColumnParallel)
        {
            var partition = new VocabPartition(vocabSize, comm.Size, align);
            return new ColumnParallelLmHead(LoadVocabShard(loader, tensor, partition, comm.Rank, hiddenSize), partition, comm, mm) { Softcap = softcap };
        }
        if (hiddenSize % comm.Size != 0)
            throw new TpLlmException($"row-parallel LM head needs hidden size H % tp == 0, but H = {hiddenSize} and tp = {comm.Size}");
        int hR = hiddenSize / comm.Size;
        return new RowParallelLmHead(loader.LoadColumns(tensor, comm.Rank * hR, hR, vocabSize, hiddenSize, WeightFormats.Unquantized), hiddenSize, comm, mm) { Softcap = softcap };
    }
}
