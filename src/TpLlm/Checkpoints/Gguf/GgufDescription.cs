using System.Text.Json;

namespace TpLlm.Checkpoints.Gguf;

/// <summary>
/// What a GGUF file's metadata says, written as the Hugging Face files that say it in a model folder: a
/// <c>config.json</c> (from <c>{arch}.*</c>) and a <c>tokenizer.json</c> (from <c>tokenizer.ggml.*</c>), so that the
/// one parser of each reads GGUF models too. Architectures: <c>llama</c> (also Mistral's), <c>qwen2</c>, <c>qwen3</c>.
/// </summary>
public static class GgufDescription
{
    /// <summary>GGUF architectures read, with their <c>model_type</c>.</summary>
    public static IReadOnlyDictionary<string, string> Architectures { get; } = new Dictionary<string, string>
    {
        ["llama"] = "llama", ["qwen2"] = "qwen2", ["qwen3"] = "qwen3",
    };

    /// <summary>Pre-tokenizer patterns by <c>tokenizer.ggml.pre</c> (llama.cpp's names).</summary>
    private static readonly Dictionary<string, string> PrePatterns = new()
    {
        ["default"] = Tokenization.HfTokenizer.Gpt2Pattern,
        ["gpt-2"] = Tokenization.HfTokenizer.Gpt2Pattern,
        ["gpt2"] = Tokenization.HfTokenizer.Gpt2Pattern,
        ["llama-bpe"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["llama3"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["qwen2"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    };

    /// <summary>The file's architecture (<c>general.architecture</c>), checked to be one TpLlm reads.</summary>
    public static string Architecture(GgufFile f)
    {
        var arch = f.String("general.architecture") ?? throw new CheckpointException($"{f.Path}: metadata 'general.architecture' is missing");
        if (!Architectures.ContainsKey(arch))
            throw new CheckpointException($"{f.Path}: GGUF architecture '{arch}' is not supported (supported: {string.Join(", ", Architectures.Keys)})");
        return arch;
    }

    /// <summary>A <c>config.json</c> equivalent to the file's metadata.</summary>
    public static byte[] ConfigJson(GgufFile f)
    {
        string arch = Architecture(f);
        long Need(string key, long min, long max) => f.Int($"{arch}.{key}", min, max) ?? throw new CheckpointException($"{f.Path}: metadata '{arch}.{key}' is missing");
        long hidden = Need("embedding_length", 1, 1 << 20), heads = Need("attention.head_count", 1, 4096);
        long vocab = f.Int($"{arch}.vocab_size", 1, 1 << 26)
            ?? (f.TryGet("token_embd.weight", out var embd) && embd.Dims.Length == 2 ? embd.Dims[1] : (long?)f.Array<string>("tokenizer.ggml.tokens")?.Length)
            ?? throw new CheckpointException($"{f.Path}: neither '{arch}.vocab_size' nor a token_embd.weight matrix gives the vocabulary size");
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("model_type", Architectures[arch]);
            w.WriteNumber("hidden_size", hidden);
            w.WriteNumber("intermediate_size", Need("feed_forward_length", 1, 1 << 22));
            w.WriteNumber("num_hidden_layers", Need("block_count", 1, 1024));
            w.WriteNumber("num_attention_heads", heads);
            w.WriteNumber("num_key_value_heads", f.Int($"{arch}.attention.head_count_kv", 1, 4096) ?? heads);
            if (f.Int($"{arch}.attention.key_length", 2, 4096) is { } headDim) w.WriteNumber("head_dim", headDim);
            else if (hidden % heads == 0) w.WriteNumber("head_dim", hidden / heads);
            w.WriteNumber("vocab_size", vocab);
            if (f.Number($"{arch}.attention.layer_norm_rms_epsilon") is { } eps) w.WriteNumber("rms_norm_eps", eps);
            if (f.Int($"{arch}.context_length", 1, 1 << 24) is { } ctx) w.WriteNumber("max_position_embeddings", ctx);
            if (f.Number($"{arch}.rope.freq_base") is { } theta) w.WriteNumber("rope_theta", theta);
            if (f.String($"{arch}.rope.scaling.type") is { } scaling && scaling != "none")
            {
                w.WriteStartObject("rope_scaling");
                w.WriteString("rope_type", scaling);
                if (f.Number($"{arch}.rope.scaling.factor") is { } factor) w.WriteNumber("factor", factor);
                w.WriteEndObject();
            }
            w.WriteBoolean("tie_word_embeddings", !f.TryGet("output.weight", out _));
            if (f.Int("tokenizer.ggml.bos_token_id", 0, int.MaxValue) is { } bos) w.WriteNumber("bos_token_id", bos);
            var eos = new[] { "eos_token_id", "eot_token_id", "eom_token_id" }
                .Select(k => f.Int("tokenizer.ggml." + k, 0, int.MaxValue)).OfType<long>().Distinct().ToArray();
            w.WriteStartArray("eos_token_id");
            foreach (var e in eos) w.WriteNumberValue(e);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>
    /// A <c>tokenizer.json</c> equivalent to the file's vocabulary: byte-level BPE (<c>tokenizer.ggml.model</c> =
    /// <c>gpt2</c>) with its merges, pre-tokenizer pattern (<c>tokenizer.ggml.pre</c>), control and user-defined tokens
    /// as added tokens, and the BOS token put before a text when <c>tokenizer.ggml.add_bos_token</c> says so.
    /// </summary>
    public static byte[] TokenizerJson(GgufFile f)
    {
        string model = f.String("tokenizer.ggml.model") ?? throw new CheckpointException($"{f.Path}: metadata 'tokenizer.ggml.model' is missing, so the file has no tokenizer (pass token ids with --ids)");
        if (model == "llama") return SentencePieceJson(f);
        if (model != "gpt2")
            throw new CheckpointException($"{f.Path}: tokenizer.ggml.model '{model}' is not supported (supported: gpt2, byte-level BPE, and llama, SentencePiece); pass token ids with --ids");
        var tokens = f.Array<string>("tokenizer.ggml.tokens") ?? throw new CheckpointException($"{f.Path}: metadata 'tokenizer.ggml.tokens' is missing");
        var merges = f.Array<string>("tokenizer.ggml.merges") ?? throw new CheckpointException($"{f.Path}: metadata 'tokenizer.ggml.merges' is missing");
        var types = f.Array<long>("tokenizer.ggml.token_type");
        if (types is not null && types.Length != tokens.Length)
            throw new CheckpointException($"{f.Path}: tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        string pre = f.String("tokenizer.ggml.pre") ?? "default";
        if (!PrePatterns.TryGetValue(pre, out var pattern))
            throw new CheckpointException($"{f.Path}: tokenizer.ggml.pre '{pre}' is not supported (supported: {string.Join(", ", PrePatterns.Keys)})");
        long? bos = f.Int("tokenizer.ggml.bos_token_id", 0, tokens.Length - 1);
        bool addBos = f.Bool("tokenizer.ggml.add_bos_token") ?? false;

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            WriteAddedTokens(w, tokens, types, type => type is 3 or 4);
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", pattern);
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("use_regex", false);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            WritePostProcessor(w, tokens, addBos ? bos : null);
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int id = 0; id < tokens.Length; id++)
                if (seen.Add(tokens[id])) w.WriteNumber(tokens[id], id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var m in merges) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>
    /// A SentencePiece vocabulary (<c>tokenizer.ggml.model</c> = <c>llama</c>: Llama 2, Mistral) as the
    /// <c>tokenizer.json</c> transformers converts it to: the pieces with <c>▁</c> for spaces, byte fallback to the
    /// <c>&lt;0xXX&gt;</c> pieces, and the merges its converter derives from the pieces' scores — every split of a
    /// piece into two pieces, ordered by the piece's score (highest first), then by the halves' ids.
    /// </summary>
    private static byte[] SentencePieceJson(GgufFile f)
    {
        var tokens = f.Array<string>("tokenizer.ggml.tokens") ?? throw new CheckpointException($"{f.Path}: metadata 'tokenizer.ggml.tokens' is missing");
        var scores = f.Array<double>("tokenizer.ggml.scores") ?? throw new CheckpointException($"{f.Path}: metadata 'tokenizer.ggml.scores' is missing (a SentencePiece vocabulary needs its scores)");
        var types = f.Array<long>("tokenizer.ggml.token_type");
        if (scores.Length != tokens.Length || types is not null && types.Length != tokens.Length)
            throw new CheckpointException($"{f.Path}: {tokens.Length} tokens but {scores.Length} scores and {types?.Length} token types");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++) vocab.TryAdd(tokens[id], id);
        var merges = new List<(int Left, int Right, double Score, int Order)>();
        for (int id = 0; id < tokens.Length; id++)
        {
            string t = tokens[id];
            var local = new List<(int, int)>();
            for (int k = 1; k < t.Length; k++)
            {
                if (char.IsLowSurrogate(t[k])) continue; // split between code points, as Python's str does
                if (vocab.TryGetValue(t[..k], out int l) && vocab.TryGetValue(t[k..], out int r)) local.Add((l, r));
            }
            foreach (var (l, r) in local.OrderBy(x => x.Item1).ThenBy(x => x.Item2)) merges.Add((l, r, scores[id], merges.Count));
        }
        merges.Sort((a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Order.CompareTo(b.Order)); // a stable sort by score
        long? bos = f.Int("tokenizer.ggml.bos_token_id", 0, tokens.Length - 1), unk = f.Int("tokenizer.ggml.unknown_token_id", 0, tokens.Length - 1);
        bool addBos = f.Bool("tokenizer.ggml.add_bos_token") ?? true, addSpace = f.Bool("tokenizer.ggml.add_space_prefix") ?? true;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            WriteAddedTokens(w, tokens, types, type => type is 2 or 3 or 4);
            w.WriteStartObject("normalizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("normalizers");
            if (addSpace)
            {
                w.WriteStartObject();
                w.WriteString("type", "Prepend");
                w.WriteString("prepend", "▁");
                w.WriteEndObject();
            }
            w.WriteStartObject();
            w.WriteString("type", "Replace");
            w.WriteStartObject("pattern");
            w.WriteString("String", " ");
            w.WriteEndObject();
            w.WriteString("content", "▁");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            WritePostProcessor(w, tokens, addBos ? bos : null);
            w.WriteStartObject("decoder");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("decoders");
            w.WriteStartObject();
            w.WriteString("type", "ByteFallback");
            w.WriteEndObject();
            if (addSpace)
            {
                w.WriteStartObject();
                w.WriteString("type", "Strip");
                w.WriteString("content", " ");
                w.WriteNumber("start", 1);
                w.WriteNumber("stop", 0);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteBoolean("byte_fallback", true);
            w.WriteBoolean("fuse_unk", true);
            if (unk is { } u) w.WriteString("unk_token", tokens[u]);
            w.WriteStartObject("vocab");
            foreach (var (token, id) in vocab) w.WriteNumber(token, id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var m in merges) w.WriteStringValue(tokens[m.Left] + " " + tokens[m.Right]);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    // control, user-defined (and SentencePiece's unknown) tokens match whole, before the model
    private static void WriteAddedTokens(Utf8JsonWriter w, string[] tokens, long[]? types, Func<long, bool> added)
    {
        w.WriteStartArray("added_tokens");
        for (int id = 0; id < tokens.Length; id++)
        {
            long type = types?[id] ?? 1;
            if (!added(type) || tokens[id].Length == 0) continue;
            w.WriteStartObject();
            w.WriteNumber("id", id);
            w.WriteString("content", tokens[id]);
            w.WriteBoolean("special", type is 2 or 3);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    // the BOS token before a text, as transformers' TemplateProcessing writes it
    private static void WritePostProcessor(Utf8JsonWriter w, string[] tokens, long? bos)
    {
        if (bos is not { } b) return;
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        w.WriteStartObject();
        w.WriteStartObject("SpecialToken");
        w.WriteString("id", tokens[b]);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartObject();
        w.WriteStartObject("Sequence");
        w.WriteString("id", "A");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        w.WriteStartObject(tokens[b]);
        w.WriteStartArray("ids");
        w.WriteNumberValue(b);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>The chat template (<c>tokenizer.chat_template</c>) and the text of the BOS and EOS tokens, each null when absent.</summary>
    public static (string? Template, string? Bos, string? Eos) ChatTemplate(GgufFile f)
    {
        var tokens = f.Array<string>("tokenizer.ggml.tokens");
        string? Token(string key) => tokens is not null && f.Int(key, 0, tokens.Length - 1) is { } id ? tokens[id] : null;
        return (f.String("tokenizer.chat_template"), Token("tokenizer.ggml.bos_token_id"), Token("tokenizer.ggml.eos_token_id"));
    }

    /// <summary>Names the metadata as the parsers' messages should: "file.gguf (metadata)".</summary>
    public static string MetadataName(GgufFile f) => $"{f.Path} (metadata)";
}
