using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// One rank's part of a Llama-family model (Llama 2/3, Mistral, Qwen2): vocab-parallel embedding,
/// tensor-parallel decoder layers, final norm and LM head, KV cache. Every rank of the group
/// runs the same calls (SPMD); activations between layers are replicated <c>[T, H]</c>.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly LlamaDecoderLayer[] _layers;
    private readonly float[] _finalNorm;
    private float[] _x = [];  // [T, H] residual stream

    /// <summary>Architecture.</summary>
    public ModelConfig Config { get; }
    /// <summary>What this rank holds.</summary>
    public ShardPlan Plan { get; }
    /// <summary>The group.</summary>
    public ICommunicator Comm { get; }
    /// <summary>Token embedding (vocab-parallel).</summary>
    public VocabParallelEmbedding Embedding { get; }
    /// <summary>The LM head.</summary>
    public ILmHead Head { get; }
    /// <summary>KV cache of this rank.</summary>
    public KvCache Cache { get; }
    /// <summary>This rank's kernel engine.</summary>
    public MatMul MatMul { get; }
    /// <summary>The decoder layers.</summary>
    public IReadOnlyList<LlamaDecoderLayer> Layers => _layers;
    /// <summary>Context length per sequence.</summary>
    public int MaxContext => Cache.MaxPositions;

    private LlamaModel(ModelConfig config, ShardPlan plan, ICommunicator comm, VocabParallelEmbedding embedding, ILmHead head,
        LlamaDecoderLayer[] layers, float[] finalNorm, KvCache cache, MatMul mm)
    {
        Config = config; Plan = plan; Comm = comm; Embedding = embedding; Head = head;
        _layers = layers; _finalNorm = finalNorm; Cache = cache; MatMul = mm;
    }

    /// <summary>Loads this rank's shards from <paramref name="checkpoint"/>, reading only the rows and columns it owns.</summary>
    public static LlamaModel Load(ModelConfig c, Checkpoint checkpoint, ICommunicator comm, ModelOptions? options = null)
    {
        options ??= new ModelOptions();
        var quant = options.Quantization;
        if (quant is { IsQuantized: false }) throw new TpLlmException($"quantization format '{quant.Name}' is not a quantized format");
        int kGroup = quant?.GroupSize ?? 1;
        var plan = ShardPlan.For(c, comm.Size, comm.Rank, options.VocabAlign, kGroup);
        int threads = options.ComputeThreads > 0 ? options.ComputeThreads : Math.Max(1, Environment.ProcessorCount / comm.Size);
        var loader = new WeightLoader(checkpoint, threads);
        int H = c.HiddenSize, d = c.HeadDim;
        int context = options.MaxContext > 0 ? options.MaxContext : Math.Min(c.MaxPositionEmbeddings, 4096);
        if (context > c.MaxPositionEmbeddings)
            throw new TpLlmException($"context {context} exceeds the model's max_position_embeddings {c.MaxPositionEmbeddings}");
        if (options.MaxSequences < 1) throw new TpLlmException($"max sequences = {options.MaxSequences}, must be ≥ 1");

        if (FaultInjection.At("load", comm.Rank))
            throw new Checkpoints.CheckpointException($"{checkpoint.Folder}: tensor 'model.layers.0.self_attn.q_proj.weight' not found for rank {comm.Rank} (injected fault)");
        var embedWeight = LmHeadLoader.LoadVocabShard(loader, LmHeadLoader.EmbeddingName, plan.Vocab, comm.Rank, H);
        var embedding = new VocabParallelEmbedding(embedWeight, plan.Vocab, comm);
        bool tied = LmHeadLoader.SourceTensor(checkpoint, c.TieWordEmbeddings) == LmHeadLoader.EmbeddingName;
        ILmHead head = tied && options.HeadStrategy == LmHeadStrategy.ColumnParallel
            ? new ColumnParallelLmHead(embedWeight, plan.Vocab, comm) // one shard serves both
            : LmHeadLoader.Load(loader, c.TieWordEmbeddings, c.VocabSize, H, comm, options.HeadStrategy, options.VocabAlign);

        var rope = new RotaryEmbedding(c.Rope, d, context);
        var allPlans = Enumerable.Range(0, comm.Size).Select(r => ShardPlan.For(c, comm.Size, r, options.VocabAlign, kGroup)).ToArray();
        var layers = new LlamaDecoderLayer[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            int qRows = c.NumHeads * d, kvRows = c.NumKvHeads * d;
            var qkvW = loader.LoadStacked([
                new(p + "self_attn.q_proj.weight", plan.HeadStart * d, plan.HeadCount * d, qRows),
                new(p + "self_attn.k_proj.weight", plan.KvHeadStart * d, plan.KvHeadCount * d, kvRows),
                new(p + "self_attn.v_proj.weight", plan.KvHeadStart * d, plan.KvHeadCount * d, kvRows)], H, quant);
            float[]? qkvBias = c.AttentionBias
                ? [.. loader.LoadVector(p + "self_attn.q_proj.bias", qRows, plan.HeadStart * d, plan.HeadCount * d),
                   .. loader.LoadVector(p + "self_attn.k_proj.bias", kvRows, plan.KvHeadStart * d, plan.KvHeadCount * d),
                   .. loader.LoadVector(p + "self_attn.v_proj.bias", kvRows, plan.KvHeadStart * d, plan.KvHeadCount * d)]
                : null;
            var oW = loader.LoadColumns(p + "self_attn.o_proj.weight", plan.HeadStart * d, plan.HeadCount * d, H, qRows, quant);
            var guW = loader.LoadStacked([
                new(p + "mlp.gate_proj.weight", plan.MlpStart, plan.MlpCount, c.IntermediateSize),
                new(p + "mlp.up_proj.weight", plan.MlpStart, plan.MlpCount, c.IntermediateSize)], H, quant);
            var downW = loader.LoadColumns(p + "mlp.down_proj.weight", plan.MlpStart, plan.MlpCount, H, c.IntermediateSize, quant);
            var qkv = new ColumnParallelLinear(qkvW, qkvBias, comm, gatherOutput: false,
                allPlans.Select(ap => (ap.HeadCount + 2 * ap.KvHeadCount) * d).ToArray());
            var o = new RowParallelLinear(oW, null, comm, inputIsParallel: true, reduceResults: true);
            var gateUp = new ColumnParallelLinear(guW, null, comm, gatherOutput: false, allPlans.Select(ap => 2 * ap.MlpCount).ToArray());
            var down = new RowParallelLinear(downW, null, comm, inputIsParallel: true, reduceResults: true);
            layers[l] = new LlamaDecoderLayer(new LlamaAttention(c, plan, qkv, o, rope), new LlamaMlp(gateUp, down),
                loader.LoadVector(p + "input_layernorm.weight", H), loader.LoadVector(p + "post_attention_layernorm.weight", H), (float)c.RmsNormEps);
        }
        var finalNorm = loader.LoadVector("model.norm.weight", H);
        var cache = new KvCache(c.NumLayers, options.MaxSequences, context, plan.KvHeadCount, d);
        return new LlamaModel(c, plan, comm, embedding, head, layers, finalNorm, cache, new MatMul(threads, options.KernelPath));
    }

    /// <summary>
    /// Runs the tokens of <paramref name="chunks"/> (concatenated in <paramref name="tokens"/>)
    /// through the model, extending each sequence's KV cache. Writes the final-normed hidden
    /// state of the last token of each chunk into <paramref name="hidden"/> <c>[B, H]</c>, or of
    /// every token <c>[T, H]</c> when <paramref name="allPositions"/> is set.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<SequenceChunk> chunks, Span<float> hidden, bool allPositions = false)
    {
        int H = Config.HiddenSize, T = tokens.Length, total = 0;
        foreach (var ch in chunks)
        {
            if ((uint)ch.Slot >= (uint)Cache.Slots) throw new TpLlmException($"sequence slot {ch.Slot} outside [0, {Cache.Slots})");
            if (ch.Length < 1 || ch.Start < 0 || ch.Start + ch.Length > Cache.MaxPositions)
                throw new TpLlmException($"positions [{ch.Start}, {ch.Start + ch.Length}) do not fit the context of {Cache.MaxPositions} tokens");
            total += ch.Length;
        }
        if (total != T) throw new TpLlmException($"chunks cover {total} tokens but {T} were given");
        ColumnParallelLinear.Grow(ref _x, T * H);
        var x = _x.AsSpan(0, T * H);
        if (T == 1 && FaultInjection.At("kernel", Comm.Rank)) throw new InvalidOperationException($"kernel failure on rank {Comm.Rank} (injected fault)");
        if (T == 1 && FaultInjection.At("collective", Comm.Rank)) Comm.AllReduce(new float[3], ReduceOp.Sum); // a collective the others do not make
        Embedding.Forward(tokens, x);
        for (int l = 0; l < _layers.Length; l++) _layers[l].Forward(MatMul, x, chunks, T, Cache, l);
        if (allPositions)
        {
            RmsNorm.Apply(x, _finalNorm, (float)Config.RmsNormEps, T, hidden);
        }
        else
        {
            int t = 0, b = 0;
            foreach (var ch in chunks)
            {
                t += ch.Length;
                RmsNorm.Apply(x.Slice((t - 1) * H, H), _finalNorm, (float)Config.RmsNormEps, 1, hidden.Slice(b++ * H, H));
            }
        }
        foreach (var ch in chunks) Cache.SetLength(ch.Slot, ch.Start + ch.Length);
    }

    /// <inheritdoc />
    public void Dispose() => MatMul.Dispose();
}
