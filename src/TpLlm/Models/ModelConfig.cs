using System.Text.Json;

namespace TpLlm.Models;

/// <summary>
/// The shape of a decoder-only model (its family: <see cref="Architecture"/>) read from a Hugging Face
/// <c>config.json</c>, with each layer's attention (<see cref="LayerAttention"/>). Rope settings are read in the
/// spellings real folders use: <c>rope_theta</c> + <c>rope_scaling</c> at the top level, and <c>rope_parameters</c> as
/// transformers 5 writes it (for Gemma 3, one set per layer kind).
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Supported <c>model_type</c> values.</summary>
    public static IReadOnlyList<string> SupportedModelTypes => Architectures.ModelTypes;

    /// <summary>The family's description.</summary>
    public required Architecture Architecture { get; init; }

    /// <summary>Each layer's attention: window and RoPE.</summary>
    public required IReadOnlyList<LayerAttention> Layers { get; init; }

    /// <summary>Multiplier of q·k: 1/√head_dim, or <c>query_pre_attn_scalar</c>^−½ (Gemma).</summary>
    public required double AttentionScale { get; init; }

    /// <summary>Multiplier of the embedding's output: 1, or √hidden_size in the weights' dtype (Gemma).</summary>
    public float EmbeddingScale { get; init; } = 1;

    /// <summary>Final logits become <c>cap · tanh(logits / cap)</c> when set (<c>final_logit_softcapping</c>).</summary>
    public double? FinalLogitSoftcap { get; init; }

    /// <summary>True when some layer attends over a sliding window.</summary>
    public bool HasSlidingLayers => Layers.Any(l => l.Slides);

    /// <summary><c>model_type</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary>H.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>I.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Decoder layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (GQA).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Per-head dimension (explicit or H / heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>V as declared by the config (rows of the embedding).</summary>
    public required int VocabSize { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary>Context length.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary>The LM head shares the embedding.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>q/k/v projections have biases (Qwen2, or <c>attention_bias</c>).</summary>
    public required bool AttentionBias { get; init; }
    /// <summary>Rotary embedding settings of the global layers (sliding layers may have their own: <see cref="Layers"/>).</summary>
    public required RopeParameters Rope { get; init; }
    /// <summary>End-of-sequence ids from config.json (generation_config.json may override).</summary>
    public required int[] EosTokenIds { get; init; }
    /// <summary>Beginning-of-sequence id, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>The config carries a <c>quantization_config</c> (the LM head stays unquantized regardless).</summary>
    public bool HasQuantizationConfig { get; init; }

    /// <summary>Reads <c>config.json</c> (and <c>generation_config.json</c> if present) from <paramref name="folder"/>.</summary>
    /// <exception cref="ModelConfigException">Missing, malformed or unsupported configuration.</exception>
    public static ModelConfig Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelConfigException($"{folder}: model folder not found");
        var path = Path.Combine(folder, "config.json");
        if (!IO.InputFile.Exists(path)) throw new ModelConfigException($"{path}: config.json not found");
        var config = Parse(path, IO.InputFile.ReadAll(path, JsonInput.MaxConfigBytes, m => new ModelConfigException(m)));
        var genPath = Path.Combine(folder, "generation_config.json");
        if (IO.InputFile.Exists(genPath))
        {
            var eos = JsonInput.ReadFile(genPath, JsonInput.MaxConfigBytes, 64,
                r => r.ValueKind == JsonValueKind.Object ? ReadIds(genPath, r, "eos_token_id") : throw new ModelConfigException($"{genPath}: expected a JSON object"),
                (m, e) => new ModelConfigException(m, e));
            if (eos.Length > 0) config = config with { EosTokenIds = eos };
        }
        return config;
    }

    /// <summary>Parses config.json content; <paramref name="path"/> names it in errors.</summary>
    public static ModelConfig Parse(string path, byte[] json) =>
        JsonInput.Read(path, json, 64, r => r.ValueKind == JsonValueKind.Object ? FromRoot(path, r) : throw new ModelConfigException($"{path}: expected a JSON object"),
            (m, e) => new ModelConfigException(m, e));

    private static ModelConfig FromRoot(string path, JsonElement r)
    {
        string type = Str(path, r, "model_type") ?? throw new ModelConfigException($"{path}: 'model_type' is missing (supported: {string.Join(", ", SupportedModelTypes)})");
        var arch = Architectures.For(type)
            ?? throw new ModelConfigException($"{path}: model_type '{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})"
                + (type == "gemma3" ? "; for Gemma 3's text model use a config with model_type gemma3_text (Gemma3ForCausalLM)" : ""));
        int hidden = Int(path, r, "hidden_size", 1, 1 << 20);
        int heads = Int(path, r, "num_attention_heads", 1, 4096);
        int kvHeads = r.TryGetProperty("num_key_value_heads", out var kvEl) && kvEl.ValueKind != JsonValueKind.Null ? Int(path, r, "num_key_value_heads", 1, 4096) : heads;
        if (heads % kvHeads != 0)
            throw new ModelConfigException($"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        bool hasHeadDim = r.TryGetProperty("head_dim", out var hd) && hd.ValueKind != JsonValueKind.Null;
        if (!hasHeadDim && arch.RequiresHeadDim)
            throw new ModelConfigException($"{path}: 'head_dim' is missing; {type} configs must give it (transformers' default for {type} is not hidden_size / num_attention_heads)");
        int headDim = hasHeadDim ? Int(path, r, "head_dim", 2, 4096) : hidden / heads;
        if (headDim % 2 != 0 || headDim < 2) throw new ModelConfigException($"{path}: head_dim {headDim} must be even (rotary pairs)");
        if (!r.TryGetProperty("head_dim", out _) && hidden % heads != 0)
            throw new ModelConfigException($"{path}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given");
        int layers = Int(path, r, "num_hidden_layers", 1, 1024);
        var dtype = Str(path, r, "dtype") ?? Str(path, r, "torch_dtype");
        var (globalRope, slidingRope) = ReadRopes(path, r, arch, dtype == "bfloat16" && arch.RoundsRopeLikeTransformers);
        CheckActivation(path, r, arch);
        if (r.TryGetProperty("attn_logit_softcapping", out var asc) && asc.ValueKind != JsonValueKind.Null)
            throw new ModelConfigException($"{path}: 'attn_logit_softcapping' is {asc}; soft-capped attention logits (Gemma 2) are not supported");
        return new ModelConfig
        {
            ModelType = type,
            Architecture = arch,
            Layers = ReadLayers(path, r, arch, layers, globalRope, slidingRope),
            AttentionScale = arch.SlidingLayers == SlidingLayers.Pattern
                ? 1 / Math.Sqrt(Dbl(path, r, "query_pre_attn_scalar", 256, 1e-9, 1e9)) // Gemma's default, when absent
                : 1 / Math.Sqrt(headDim),
            EmbeddingScale = arch.ScaledEmbedding ? EmbedScale(hidden, dtype) : 1,
            FinalLogitSoftcap = r.TryGetProperty("final_logit_softcapping", out var fsc) && fsc.ValueKind != JsonValueKind.Null
                ? Dbl(path, r, "final_logit_softcapping", 0, 1e-6, 1e6) : null,
            HiddenSize = hidden,
            IntermediateSize = Int(path, r, "intermediate_size", 1, 1 << 22),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = Int(path, r, "vocab_size", 1, 1 << 26),
            RmsNormEps = Dbl(path, r, "rms_norm_eps", 1e-6, 0, 1),
            MaxPositionEmbeddings = r.TryGetProperty("max_position_embeddings", out _) ? Int(path, r, "max_position_embeddings", 1, 1 << 24) : 4096,
            TieWordEmbeddings = Bool(path, r, "tie_word_embeddings", false),
            AttentionBias = arch.QkvBias || Bool(path, r, "attention_bias", false),
            Rope = globalRope,
            EosTokenIds = ReadIds(path, r, "eos_token_id"),
            BosTokenId = ReadIds(path, r, "bos_token_id") is [var b, ..] ? b : null,
            HasQuantizationConfig = r.TryGetProperty("quantization_config", out var q) && q.ValueKind == JsonValueKind.Object,
        };
    }

    // the global layers' RoPE, and the sliding layers' (Gemma 3: its own base, no scaling; others: the same)
    private static (RopeParameters Global, RopeParameters Sliding) ReadRopes(string path, JsonElement r, Architecture arch, bool bf16)
    {
        RopeParameters global, sliding;
        // transformers 5 writes Gemma 3's as rope_parameters { full_attention: {…}, sliding_attention: {…} }
        if (r.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object && rp.TryGetProperty("full_attention", out var full))
        {
            global = ReadRope(path, r, full);
            sliding = rp.TryGetProperty("sliding_attention", out var sl) ? ReadRope(path, r, sl) : global;
        }
        else
        {
            global = ReadRope(path, r, null);
            sliding = arch.SlidingLayers == SlidingLayers.Pattern
                ? new RopeParameters(Dbl(path, r, "rope_local_base_freq", 10000, 1e-9, 1e12), "default")
                : global;
        }
        return (global with { Bf16InverseFrequencies = bf16 }, sliding with { Bf16InverseFrequencies = bf16 });
    }

    private static RopeParameters ReadRope(string path, JsonElement r, JsonElement? given)
    {
        // transformers 5: rope_parameters { rope_theta, rope_type, factor, ... }
        // older: rope_theta at top level, rope_scaling { rope_type | type, factor, ... } or null
        JsonElement? p = given ?? (r.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object ? rp
            : r.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? rs : null);
        double theta = p is { } pe && pe.TryGetProperty("rope_theta", out _) ? Dbl(path, pe, "rope_theta", 10000, 1e-9, 1e12)
            : Dbl(path, r, "rope_theta", 10000, 1e-9, 1e12);
        if (p is not { } e) return new RopeParameters(theta, "default");
        string type = Str(path, e, "rope_type") ?? Str(path, e, "type") ?? "default";
        if (!RopeParameters.SupportedTypes.Contains(type))
            throw new ModelConfigException($"{path}: rope_type '{type}' is not supported (supported: {string.Join(", ", RopeParameters.SupportedTypes)})");
        if (type == "default") return new RopeParameters(theta, type);
        if (type == "linear") return new RopeParameters(theta, type, Dbl(path, e, "factor", 1, 1e-9, 1e6));
        return new RopeParameters(theta, type,
            Dbl(path, e, "factor", 8, 1e-9, 1e6), Dbl(path, e, "low_freq_factor", 1, 1e-9, 1e6), Dbl(path, e, "high_freq_factor", 4, 1e-9, 1e6),
            e.TryGetProperty("original_max_position_embeddings", out _) ? Int(path, e, "original_max_position_embeddings", 1, 1 << 24) : 8192);
    }

    // each layer's window: from layer_types when given, else by the family's fields
    private static LayerAttention[] ReadLayers(string path, JsonElement r, Architecture arch, int layers, RopeParameters global, RopeParameters sliding)
    {
        var slides = new bool[layers];
        if (r.TryGetProperty("layer_types", out var lt) && lt.ValueKind != JsonValueKind.Null)
        {
            if (lt.ValueKind != JsonValueKind.Array || lt.GetArrayLength() != layers)
                throw new ModelConfigException($"{path}: 'layer_types' must list {layers} layer types (num_hidden_layers), not {lt}");
            int i = 0;
            foreach (var t in lt.EnumerateArray())
                slides[i++] = t.ValueKind == JsonValueKind.String ? t.GetString() switch
                {
                    "full_attention" => false,
                    "sliding_attention" => true,
                    var other => throw new ModelConfigException($"{path}: 'layer_types'[{i - 1}] is '{other}'; expected full_attention or sliding_attention"),
                } : throw new ModelConfigException($"{path}: 'layer_types'[{i}] is {t.ValueKind}, expected a string");
        }
        else
        {
            switch (arch.SlidingLayers)
            {
                case SlidingLayers.AllWhenWindowSet:
                    bool set = r.TryGetProperty("sliding_window", out var sw) && sw.ValueKind != JsonValueKind.Null;
                    Array.Fill(slides, set);
                    break;
                case SlidingLayers.FromMaxWindowLayers:
                    if (Bool(path, r, "use_sliding_window", false))
                    {
                        int from = r.TryGetProperty("max_window_layers", out _) ? Int(path, r, "max_window_layers", 0, 1024) : layers;
                        for (int i = from; i < layers; i++) slides[i] = true;
                    }
                    break;
                case SlidingLayers.Pattern:
                    int pattern = r.TryGetProperty("sliding_window_pattern", out _) ? Int(path, r, "sliding_window_pattern", 1, 1 << 20) : 6;
                    if (pattern > layers)
                        throw new ModelConfigException($"{path}: 'sliding_window_pattern' is {pattern}, which makes no layer of {layers} global (layer i is global when (i + 1) % {pattern} == 0)");
                    for (int i = 0; i < layers; i++) slides[i] = (i + 1) % pattern != 0;
                    break;
            }
        }
        int window = 0;
        if (slides.Any(s => s)) window = Int(path, r, "sliding_window", 1, 1 << 24);
        if (arch.SlidingLayers == SlidingLayers.Pattern && slides.All(s => s))
            throw new ModelConfigException($"{path}: 'layer_types' makes every one of {layers} layers a sliding-window layer; Gemma 3 needs global ones");
        return [.. slides.Select(s => s ? new LayerAttention(window, sliding) : new LayerAttention(0, global))];
    }

    // hidden_act (Llama, Qwen) or hidden_activation (Gemma) must be what the family computes
    private static void CheckActivation(string path, JsonElement r, Architecture arch)
    {
        foreach (var key in new[] { "hidden_activation", "hidden_act" })
            if (Str(path, r, key) is { } act && !arch.ActivationNames.Contains(act))
                throw new ModelConfigException($"{path}: '{key}' is '{act}'; {arch.ModelType} models are run with {string.Join(" or ", arch.ActivationNames)}");
    }

    // √H in the weights' dtype, as transformers multiplies (embed_scale.to(weight.dtype))
    private static float EmbedScale(int hidden, string? dtype)
    {
        float s = (float)Math.Sqrt(hidden);
        return dtype switch
        {
            "bfloat16" => Tensors.Bf16.ToF32(Tensors.Bf16.FromF32(s)),
            "float16" => (float)(Half)s,
            _ => s,
        };
    }

    private static int[] ReadIds(string path, JsonElement r, string key)
    {
        if (!r.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return [];
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int one) && one >= 0) return [one];
        if (e.ValueKind == JsonValueKind.Array && e.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int v) && v >= 0))
            return e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
        throw new ModelConfigException($"{path}: '{key}' is {e}, expected a non-negative id or a list of them");
    }

    private static string? Str(string path, JsonElement r, string key) =>
        !r.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null ? null
        : e.ValueKind == JsonValueKind.String ? e.GetString() : throw new ModelConfigException($"{path}: '{key}' is {e.ValueKind}, expected a string");

    private static int Int(string path, JsonElement r, string key, int min, int max)
    {
        if (!r.TryGetProperty(key, out var e)) throw new ModelConfigException($"{path}: '{key}' is missing");
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < min || v > max)
            throw new ModelConfigException($"{path}: '{key}' is {e}, expected an integer in [{min}, {max}]");
        return (int)v;
    }

    private static double Dbl(string path, JsonElement r, string key, double fallback, double min, double max)
    {
        if (!r.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return fallback;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !(v >= min && v <= max))
            throw new ModelConfigException($"{path}: '{key}' is {e}, expected a number in [{min}, {max}]");
        return v;
    }

    private static bool Bool(string path, JsonElement r, string key, bool fallback) =>
        !r.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null ? fallback
        : e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean()
        : throw new ModelConfigException($"{path}: '{key}' is {e}, expected true or false");
}
