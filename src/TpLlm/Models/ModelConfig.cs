using System.Text.Json;

namespace TpLlm.Models;

/// <summary>
/// The architecture of a Llama-family model (model types llama, mistral, qwen2) read from a
/// Hugging Face <c>config.json</c>. Rope settings are read in both spellings real folders use:
/// <c>rope_theta</c> + <c>rope_scaling</c> at the top level, and <c>rope_parameters</c> as
/// transformers 5 writes it.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Supported <c>model_type</c> values.</summary>
    public static readonly string[] SupportedModelTypes = ["llama", "mistral", "qwen2"];

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
    /// <summary>Rotary embedding settings.</summary>
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
        if (!SupportedModelTypes.Contains(type))
            throw new ModelConfigException($"{path}: model_type '{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        int hidden = Int(path, r, "hidden_size", 1, 1 << 20);
        int heads = Int(path, r, "num_attention_heads", 1, 4096);
        int kvHeads = r.TryGetProperty("num_key_value_heads", out var kvEl) && kvEl.ValueKind != JsonValueKind.Null ? Int(path, r, "num_key_value_heads", 1, 4096) : heads;
        if (heads % kvHeads != 0)
            throw new ModelConfigException($"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        int headDim = r.TryGetProperty("head_dim", out var hd) && hd.ValueKind != JsonValueKind.Null ? Int(path, r, "head_dim", 2, 4096) : hidden / heads;
        if (headDim % 2 != 0 || headDim < 2) throw new ModelConfigException($"{path}: head_dim {headDim} must be even (rotary pairs)");
        if (!r.TryGetProperty("head_dim", out _) && hidden % heads != 0)
            throw new ModelConfigException($"{path}: hidden_size {hidden} is not divisible by num_attention_heads {heads} and no head_dim is given");
        return new ModelConfig
        {
            ModelType = type,
            HiddenSize = hidden,
            IntermediateSize = Int(path, r, "intermediate_size", 1, 1 << 22),
            NumLayers = Int(path, r, "num_hidden_layers", 1, 1024),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = Int(path, r, "vocab_size", 1, 1 << 26),
            RmsNormEps = Dbl(path, r, "rms_norm_eps", 1e-6, 0, 1),
            MaxPositionEmbeddings = r.TryGetProperty("max_position_embeddings", out _) ? Int(path, r, "max_position_embeddings", 1, 1 << 24) : 4096,
            TieWordEmbeddings = Bool(path, r, "tie_word_embeddings", false),
            AttentionBias = type == "qwen2" || Bool(path, r, "attention_bias", false),
            Rope = ReadRope(path, r) with { Bf16InverseFrequencies = (Str(path, r, "dtype") ?? Str(path, r, "torch_dtype")) == "bfloat16" },
            EosTokenIds = ReadIds(path, r, "eos_token_id"),
            BosTokenId = ReadIds(path, r, "bos_token_id") is [var b, ..] ? b : null,
            HasQuantizationConfig = r.TryGetProperty("quantization_config", out var q) && q.ValueKind == JsonValueKind.Object,
        };
    }

    private static RopeParameters ReadRope(string path, JsonElement r)
    {
        // transformers 5: rope_parameters { rope_theta, rope_type, factor, ... }
        // older: rope_theta at top level, rope_scaling { rope_type | type, factor, ... } or null
        JsonElement? p = r.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object ? rp
            : r.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? rs : null;
        double theta = p is { } pe && pe.TryGetProperty("rope_theta", out _) ? Dbl(path, pe, "rope_theta", 10000, 1e-9, 1e12)
            : Dbl(path, r, "rope_theta", 10000, 1e-9, 1e12);
        if (p is not { } e) return new RopeParameters(theta, "default");
        string type = Str(path, e, "rope_type") ?? Str(path, e, "type") ?? "default";
        if (!RopeParameters.SupportedTypes.Contains(type))
            throw new ModelConfigException($"{path}: rope_type '{type}' is not supported (supported: {string.Join(", ", RopeParameters.SupportedTypes)})");
        if (type == "default") return new RopeParameters(theta, type);
        return new RopeParameters(theta, type,
            Dbl(path, e, "factor", 8, 1e-9, 1e6), Dbl(path, e, "low_freq_factor", 1, 1e-9, 1e6), Dbl(path, e, "high_freq_factor", 4, 1e-9, 1e6),
            e.TryGetProperty("original_max_position_embeddings", out _) ? Int(path, e, "original_max_position_embeddings", 1, 1 << 24) : 8192);
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
