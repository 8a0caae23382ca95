using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace TpLlm.Tokenization;

/// <summary>
/// A BPE tokenizer read from a Hugging Face <c>tokenizer.json</c>. Byte-level ones (GPT-2, Llama 3,
/// Qwen2): vocabulary, merges, pre-tokenizer regex and added/special tokens are parsed here and
/// handed to Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> for encoding. SentencePiece-converted
/// ones (Llama 2, Mistral: <c>▁</c> for spaces, byte fallback) go to <see cref="SentencePieceBpe"/>.
/// Decoding maps ids back to bytes itself so that text can stream (see <see cref="StreamingDecoder"/>).
/// </summary>
public sealed class HfTokenizer
{
    /// <summary>GPT-2's pre-tokenizer pattern, used by a ByteLevel pre-tokenizer with use_regex.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer? _bpe;
    private readonly SentencePieceBpe? _sp;
    private readonly string?[] _idToToken;
    private readonly bool[] _isAdded, _isSpecial;
    private readonly string[] _addedLongestFirst;
    private readonly HashSet<char> _addedFirstChars; // only where one of these stands can an added token start
    private readonly int[] _prefix, _suffix; // the post-processor's special tokens around a single text (e.g. <s>)

    /// <summary>Number of ids the tokenizer can produce (max id + 1).</summary>
    public int VocabSize => _idToToken.Length;

    /// <summary>Added tokens (e.g. <c>&lt;|endoftext|&gt;</c>) by content.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    /// <summary>The ids the post-processor puts before and after a text (<c>add_special_tokens</c>), e.g. <c>&lt;s&gt;</c>.</summary>
    public (IReadOnlyList<int> Before, IReadOnlyList<int> After) SpecialTokensAround => (_prefix, _suffix);

    private HfTokenizer(BpeTokenizer? bpe, SentencePieceBpe? sp, string?[] idToToken, bool[] isAdded, bool[] isSpecial, Dictionary<string, int> added, int[] prefix, int[] suffix)
    {
        _isSpecial = isSpecial;
        _bpe = bpe;
        _sp = sp;
        _idToToken = idToToken;
        _isAdded = isAdded;
        AddedTokens = added;
        _addedLongestFirst = [.. added.Keys.OrderByDescending(k => k.Length).ThenBy(k => k, StringComparer.Ordinal)];
        _addedFirstChars = [.. added.Keys.Select(k => k[0])];
        _prefix = prefix;
        _suffix = suffix;
        _textTokenBytes = new(BuildTextTokenBytes); // thread-safe: ranks on threads share the tokenizer
        _maxTokenBytes = new(() => Enumerable.Range(0, _idToToken.Length).Where(id => _idToToken[id] is not null).Select(id => TokenBytes(id).Length).DefaultIfEmpty(1).Max());
    }

    /// <summary>Loads <c>tokenizer.json</c> from <paramref name="folder"/>.</summary>
    /// <exception cref="TokenizerException">Missing, malformed, or not a byte-level BPE tokenizer.</exception>
    public static HfTokenizer Load(string folder)
    {
        var path = Path.Combine(folder, "tokenizer.json");
        if (!IO.InputFile.Exists(path)) throw new TokenizerException($"{path}: tokenizer file not found (pass token ids with --ids instead)");
        return Parse(path, IO.InputFile.ReadAll(path, JsonInput.MaxTokenizerBytes, m => new TokenizerException(m)));
    }

    /// <summary>Reads <c>tokenizer.json</c> content; <paramref name="path"/> names it in errors (a GGUF file's vocabulary comes this way).</summary>
    /// <exception cref="TokenizerException">Malformed, or not a supported BPE tokenizer.</exception>
    public static HfTokenizer Parse(string path, byte[] json)
    {
        return JsonInput.Read(path, json, 64, root =>
        {
            try
            {
                return Parse(path, root);
            }
            catch (Exception e) when (e is KeyNotFoundException or FormatException or ArgumentException or IndexOutOfRangeException or RegexParseException)
            {
                throw new TokenizerException($"{path}: malformed tokenizer: {e.Message}", e);
            }
        }, (m, e) => new TokenizerException(m, e));
    }

    private static HfTokenizer Parse(string path, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerException($"{path}: no 'model' object");
        var type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type != "BPE") throw new TokenizerException($"{path}: tokenizer model type '{type}' is not supported (supported: BPE)");
        bool byteLevel = IsByteLevel(root);
        if (!byteLevel && !SentencePieceBpe.Describes(root))
            throw new TokenizerException($"{path}: only byte-level BPE (GPT-2, Llama 3, Qwen2) and SentencePiece BPE (Llama 2, Mistral) tokenizers are supported; this one has neither a ByteLevel nor a Metaspace/Prepend/ByteFallback component");
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw new TokenizerException($"{path}: model.vocab is not an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int maxId = -1;
        foreach (var p in vocabEl.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id > 10_000_000)
                throw new TokenizerException($"{path}: model.vocab['{p.Name}'] = {p.Value} is not an id in [0, 10000000]");
            if (!vocab.TryAdd(p.Name, id)) throw new TokenizerException($"{path}: model.vocab lists '{p.Name}' twice");
            maxId = Math.Max(maxId, id);
        }
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergesEl) && mergesEl.ValueKind == JsonValueKind.Array)
            foreach (var m in mergesEl.EnumerateArray())
                merges.Add(m.ValueKind switch
                {
                    JsonValueKind.String => m.GetString()!,
                    JsonValueKind.Array when m.GetArrayLength() == 2 => m[0].GetString() + " " + m[1].GetString(),
                    _ => throw new TokenizerException($"{path}: merge {m} is neither \"a b\" nor [\"a\", \"b\"]"),
                });
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var addedEl) && addedEl.ValueKind == JsonValueKind.Array)
            foreach (var a in addedEl.EnumerateArray())
            {
                var content = a.GetProperty("content").GetString() ?? throw new TokenizerException($"{path}: added token without content");
                if (content.Length == 0) throw new TokenizerException($"{path}: added token {a.GetProperty("id")} has empty content"); // would match everywhere
                int id = a.GetProperty("id").GetInt32();
                if (id < 0 || id > 10_000_000) throw new TokenizerException($"{path}: added token '{content}' has id {id} outside [0, 10000000]");
                added[content] = id;
                if (a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True) special.Add(id);
                maxId = Math.Max(maxId, id);
            }
        var idToToken = new string?[maxId + 1];
        var isAdded = new bool[maxId + 1];
        var isSpecial = new bool[maxId + 1];
        foreach (var id in special) isSpecial[id] = true;
        foreach (var (s, id) in vocab) idToToken[id] = s;
        foreach (var (s, id) in added)
        {
            idToToken[id] = s;
            isAdded[id] = true;
        }
        var (prefix, suffix) = PostProcessorTokens(path, root);
        if (!byteLevel)
            return new HfTokenizer(null, SentencePieceBpe.Create(path, root, model, vocab, merges), idToToken, isAdded, isSpecial, added, prefix, suffix);
        var regex = new Regex(SplitPattern(root) ?? Gpt2Pattern, RegexOptions.Compiled);
        var options = new BpeOptions(vocab.Where(kv => !added.ContainsKey(kv.Key)))
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = added.Count > 0 ? added : null,
            PreTokenizer = new RegexPreTokenizer(regex, added.Count > 0 ? added : null),
        };
        return new HfTokenizer(BpeTokenizer.Create(options), null, idToToken, isAdded, isSpecial, added, prefix, suffix);
    }

    // TemplateProcessing's "single": the special tokens before and after sequence A
    private static (int[], int[]) PostProcessorTokens(string path, JsonElement root)
    {
        if (HfJson.Find(root, "post_processor", "TemplateProcessing") is not { } tp || !tp.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array)
            return ([], []);
        List<int> before = [], after = [];
        bool seenText = false;
        foreach (var part in single.EnumerateArray())
        {
            if (part.TryGetProperty("Sequence", out _)) { seenText = true; continue; }
            if (!part.TryGetProperty("SpecialToken", out var st) || !st.TryGetProperty("id", out var idEl)) continue;
            string name = idEl.GetString() ?? "";
            if (!tp.TryGetProperty("special_tokens", out var specials) || !specials.TryGetProperty(name, out var spec) || !spec.TryGetProperty("ids", out var ids))
                throw new TokenizerException($"{path}: post_processor names special token '{name}' without listing its ids");
            foreach (var id in ids.EnumerateArray()) (seenText ? after : before).Add(id.GetInt32());
        }
        return ([.. before], [.. after]);
    }

    private static bool IsByteLevel(JsonElement root) => HfJson.Mentions(root, "decoder", "ByteLevel") || HfJson.Mentions(root, "pre_tokenizer", "ByteLevel");

    private static string? SplitPattern(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var p) || p.ValueKind != JsonValueKind.Object) return null;
        IEnumerable<JsonElement> parts = p.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array ? list.EnumerateArray() : [p];
        foreach (var part in parts)
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var ty) && ty.GetString() == "Split" &&
                part.TryGetProperty("pattern", out var pat) && pat.ValueKind == JsonValueKind.Object && pat.TryGetProperty("Regex", out var rx))
                return rx.GetString();
        return null;
    }

    /// <summary>
    /// Encodes <paramref name="text"/> to ids (added tokens written literally are recognised). With
    /// <paramref name="addSpecialTokens"/> the post-processor's tokens go around it (Llama's <c>&lt;s&gt;</c>), as
    /// Hugging Face's <c>tokenizer(text)</c> and vLLM's completions do; a rendered chat template already has them.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefix);
        if (_bpe is not null) ids.AddRange(_bpe.EncodeToIds(text));
        else EncodeSentencePiece(text, ids);
        if (addSpecialTokens) ids.AddRange(_suffix);
        return [.. ids];
    }

    // added tokens split the text; every section between them is normalized and encoded on its own
    private void EncodeSentencePiece(string text, List<int> ids)
    {
        int start = 0, pos = 0;
        while (pos < text.Length)
        {
            string? hit = null;
            if (_addedFirstChars.Contains(text[pos]))
                foreach (var a in _addedLongestFirst)
                    if (string.CompareOrdinal(text, pos, a, 0, a.Length) == 0) { hit = a; break; }
            if (hit is null) { pos++; continue; }
            _sp!.Encode(text[start..pos], start == 0, ids);
            ids.Add(AddedTokens[hit]);
            pos += hit.Length;
            start = pos;
        }
        _sp!.Encode(text[start..], start == 0, ids);
    }

    /// <summary>
    /// True for special tokens (added tokens marked <c>special</c>, such as <c>&lt;|endoftext|&gt;</c> or
    /// <c>&lt;|eot_id|&gt;</c>): what vLLM's <c>skip_special_tokens</c> leaves out of the text.
    /// </summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_isSpecial.Length && _isSpecial[id];

    /// <summary>The most bytes one token stands for: a text of n UTF-8 bytes has at least n / this many tokens.</summary>
    public int MaxTokenBytes => _maxTokenBytes.Value;

    private readonly Lazy<int> _maxTokenBytes;

    /// <summary>Decodes ids to text (all at once); with <paramref name="skipSpecialTokens"/>, special tokens add no text.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var d = NewStreamingDecoder(skipSpecialTokens);
        var sb = new StringBuilder();
        foreach (var id in ids) sb.Append(d.Add(id));
        sb.Append(d.Flush());
        // a SentencePiece decoder's Strip drops the space the encoder prepended (streams keep it: a continuation
        // joins its prompt)
        if (_sp is { StripLeadingSpace: true } && sb.Length > 0 && sb[0] == ' ') sb.Remove(0, 1);
        return sb.ToString();
    }

    /// <summary>A decoder that turns ids into text as they arrive, holding back incomplete UTF-8 sequences.</summary>
    /// <param name="skipSpecialTokens">Special tokens add no text (vLLM's default for generated text).</param>
    public StreamingDecoder NewStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>The bytes token <paramref name="id"/> stands for (UTF-8 text for added tokens).</summary>
    public byte[] TokenBytes(int id)
    {
        var bytes = new List<byte>(16);
        AppendBytes(id, bytes);
        return [.. bytes];
    }

    /// <summary>
    /// Every id's bytes, or null for ids that are not text: added tokens (such as
    /// <c>&lt;|eot_id|&gt;</c>) and holes in the vocabulary. Built once, on first use.
    /// </summary>
    public IReadOnlyList<byte[]?> TextTokenBytes => _textTokenBytes.Value;

    private readonly Lazy<byte[]?[]> _textTokenBytes;

    private byte[]?[] BuildTextTokenBytes()
    {
        var table = new byte[]?[_idToToken.Length];
        for (int id = 0; id < table.Length; id++)
            if (_idToToken[id] is not null && !_isAdded[id]) table[id] = TokenBytes(id);
        return table;
    }

    /// <summary>Appends the bytes of token <paramref name="id"/>; unknown ids raise a clear error.</summary>
    internal void AppendBytes(int id, List<byte> bytes)
    {
        if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is not { } token)
            throw new TokenizerException($"token id {id} is not in the tokenizer's vocabulary of {VocabSize} ids");
        if (_isAdded[id]) bytes.AddRange(Encoding.UTF8.GetBytes(token));
        else if (_sp is not null) SentencePieceBpe.AppendBytes(token, bytes);
        else if (!ByteLevelAlphabet.TryDecode(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
    }
}
