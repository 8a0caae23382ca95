using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Parallel;
using TpLlm.Tensors;

namespace TpLlm.Models;

/// <summary>
/// One rank's part of a decoder-only model of any family in <see cref="Architectures"/> (Llama 2/3, Mistral, Qwen2,
/// Qwen3, Gemma 3): vocab-parallel embedding, tensor-parallel decoder layers, final norm and LM head, KV cache. The
/// family's <see cref="Architecture"/> says which tensors to read and which pieces to use (norm form, activation,
/// q/k norms, sandwich norms, embedding scale); the layers are the same classes for all. Every rank of the group runs
/// the same calls (SPMD); activations between layers are replicated <c>[T, H]</c>.
/// </summary>
public sealed class DecoderModel : IDisposable
{
    private readonly DecoderLayer[] _layers;
    private readonly float[] _finalNorm;
    private float[] _x = [];  // [T, H] residual stream
    private float[] _discard = []; // [H]: the last hidden state of a prompt piece that does not end its chunk
    private readonly SequenceChunk[] _piece = new SequenceChunk[1];

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
    public IReadOnlyList<DecoderLayer> Layers => _layers;
    /// <summary>Context length per sequence.</summary>
    public int MaxContext => Cache.MaxPositions;

    private DecoderModel(ModelConfig config, ShardPlan plan, ICommunicator comm, VocabParallelEmbedding embedding, ILmHead head,
        DecoderLayer[] layers, float[] finalNorm, KvCache cache, MatMul mm)
    {
        Config = config; Plan = plan; Comm = comm; Embedding = embedding; Head = head;
        _layers = layers; _finalNorm = finalNorm; Cache = cache; MatMul = mm;
    }

    /// <summary>
    /// The input columns a row-parallel layer's ranks split in whole groups of: the quantized format's group, or the
    /// blocks of a GGUF file's Q8_0/Q4_0 weights, which are kept as they are, else 1 (K-quants are widened).
    /// </summary>
    public static int InputGroup(ModelConfig c, IWeightSource checkpoint, IWeightFormat? quantization) =>
        quantization?.GroupSize ?? (c.NumLayers > 0 && checkpoint.Tensor("model.layers.0.mlp.down_proj.weight").DType is DType.Q8_0 or DType.Q4_0 ? 32 : 1);

    /// <summary>Loads this rank's shards from <paramref name="checkpoint"/>, reading only the rows and columns it owns.</summary>
    public static DecoderModel Load(ModelConfig c, IWeightSource checkpoint, ICommunicator comm, ModelOptions? options = null)
    {
        options ??= new ModelOptions();
        var quant = options.Quantization;
        if (quant is { IsQuantized: false }) throw new TpLlmException($"quantization format '{quant.Name}' is not a quantized format");
        int kGroup = InputGroup(c, checkpoint, quant);
        var plan = ShardPlan.For(c, comm.Size, comm.Rank, options.VocabAlign, kGroup);
        int threads = options.ComputeThreads > 0 ? options.ComputeThreads : Math.Max(1, Environment.ProcessorCount / comm.Size);
        var loader = new WeightLoader(checkpoint, threads);
        int H = c.HiddenSize, d = c.HeadDim;
        int context = options.MaxContext > 0 ? options.MaxContext : Math.Min(c.MaxPositionEmbeddings, 4096);
        if (context > c.MaxPositionEmbeddings)
            throw new TpLlmException($"context {context} exceeds the model's max_position_embeddings {c.MaxPositionEmbeddings}");
        if (options.MaxSequences < 1) throw new TpLlmException($"max sequences = {options.MaxSequences}, must be ≥ 1");

        var arch = c.Architecture;
        // a norm's weight as it multiplies: w, or 1 + w for the families that store it 0-centred
        float[] Norm(string name, int length)
        {
            var w = loader.LoadVector(name, length);
            if (arch.NormForm == NormForm.OnePlusWeight)
                for (int i = 0; i < w.Length; i++) w[i] += 1;
            return w;
        }
        var mm = new MatMul(threads, options.KernelPath);
        float? softcap = c.FinalLogitSoftcap is { } cap ? (float)cap : null;
        var embedWeight = LmHeadLoader.LoadVocabShard(loader, LmHeadLoader.EmbeddingName, plan.Vocab, comm.Rank, H);
        var embedding = new VocabParallelEmbedding(embedWeight, plan.Vocab, comm);
        bool tied = LmHeadLoader.SourceTensor(checkpoint, c.TieWordEmbeddings) == LmHeadLoader.EmbeddingName;
        ILmHead head = tied && options.HeadStrategy == LmHeadStrategy.ColumnParallel
            ? LmHeadLoader.Tied(embedWeight, plan.Vocab, comm, mm, softcap) // one shard serves both (the head is not scaled)
            : LmHeadLoader.Load(loader, c.TieWordEmbeddings, c.VocabSize, H, comm, mm, options.HeadStrategy, options.VocabAlign, softcap);

        var ropes = new Dictionary<RopeParameters, RotaryEmbedding>(); // one table per distinct RoPE (Gemma 3: global and sliding)
        var allPlans = Enumerable.Range(0, comm.Size).Select(r => ShardPlan.For(c, comm.Size, r, options.VocabAlign, kGroup)).ToArray();
        var layers = new DecoderLayer[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var kind = c.Layers[l];
            if (!ropes.TryGetValue(kind.Rope, out var rope)) ropes[kind.Rope] = rope = new RotaryEmbedding(kind.Rope, d, context);
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
            var attention = new SelfAttention(c, plan, qkv, o, rope, kind,
                arch.QkNorm ? Norm(p + "self_attn.q_norm.weight", d) : null, arch.QkNorm ? Norm(p + "self_attn.k_norm.weight", d) : null);
            layers[l] = new DecoderLayer(attention, new GatedMlp(gateUp, down, arch.Activation),
                Norm(p + "input_layernorm.weight", H), Norm(p + arch.PreFeedForwardNorm + ".weight", H), (float)c.RmsNormEps,
                arch.SandwichNorms ? Norm(p + "post_attention_layernorm.weight", H) : null,
                arch.SandwichNorms ? Norm(p + "post_feedforward_layernorm.weight", H) : null);
        }
        var finalNorm = Norm("model.norm.weight", H);
        var cache = new KvCache(c.NumLayers, options.MaxSequences, context, plan.KvHeadCount, d,
            options.SlidingWindowRings ? [.. c.Layers.Select(k => k.SlidingWindow)] : null);
        return new DecoderModel(c, plan, comm, embedding, head, layers, finalNorm, cache, mm);
    }

    /// <summary>
    /// Runs the tokens of <paramref name="chunks"/> (concatenated in <paramref name="tokens"/>)
    /// through the model, extending each sequence's KV cache. Writes the final-normed hidden
    /// state of the last token of each chunk into <paramref name="hidden"/> <c>[B, H]</c>, or of
    /// every token <c>[T, H]</c> when <paramref name="allPositions"/> is set. With sliding-window
    /// layers (rings in the cache), a chunk longer than <see cref="KvCache.RingChunk"/> runs in pieces.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<SequenceChunk> chunks, Span<float> hidden, bool allPositions = false)
    {
        int H = Config.HiddenSize, T = tokens.Length, total = 0, longest = 0;
        foreach (var ch in chunks)
        {
            if ((uint)ch.Slot >= (uint)Cache.Slots) throw new TpLlmException($"sequence slot {ch.Slot} outside [0, {Cache.Slots})");
            if (ch.Length < 1 || ch.Start < 0 || ch.Start + ch.Length > Cache.MaxPositions)
                throw new TpLlmException($"positions [{ch.Start}, {ch.Start + ch.Length}) do not fit the context of {Cache.MaxPositions} tokens");
            total += ch.Length;
            longest = Math.Max(longest, ch.Length);
        }
        if (total != T) throw new TpLlmException($"chunks cover {total} tokens but {T} were given");
        if (longest <= KvCache.RingChunk || !Cache.HasRings)
        {
            Pass(tokens, chunks, hidden, allPositions);
            return;
        }
        // a ring holds the window plus RingChunk − 1 positions: each chunk on its own, RingChunk tokens at a time
        if (_discard.Length < H) _discard = new float[H];
        int t = 0, b = 0;
        foreach (var ch in chunks)
        {
            for (int off = 0; off < ch.Length; off += KvCache.RingChunk)
            {
                int len = Math.Min(KvCache.RingChunk, ch.Length - off);
                _piece[0] = new SequenceChunk(ch.Slot, ch.Start + off, len);
                var output = allPositions ? hidden.Slice((t + off) * H, len * H) : off + len == ch.Length ? hidden.Slice(b * H, H) : _discard;
                Pass(tokens.Slice(t + off, len), _piece, output, allPositions);
            }
            t += ch.Length;
            b++;
        }
    }

    // one forward pass over the chunks (each within what the cache's rings hold)
    private void Pass(ReadOnlySpan<int> tokens, ReadOnlySpan<SequenceChunk> chunks, Span<float> hidden, bool allPositions)
    {
        int H = Config.HiddenSize, T = tokens.Length;
        ColumnParallelLinear.Grow(ref _x, T * H);
        var x = _x.AsSpan(0, T * H);
        Embedding.Forward(tokens, x);
        if (Config.EmbeddingScale != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(x, Config.EmbeddingScale, x);
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
