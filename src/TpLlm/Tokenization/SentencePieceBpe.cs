using System.Globalization;
using System.Text;

namespace TpLlm.Tokenization;

/// <summary>
/// The BPE model of SentencePiece-converted tokenizers (Llama 2, Mistral, TinyLlama) as Hugging Face's
/// <c>tokenizer.json</c> writes it: spaces become <c>▁</c> and one <c>▁</c> is prepended (a
/// <c>Prepend</c>/<c>Replace</c> normalizer or a <c>Metaspace</c> pre-tokenizer), symbols start as
/// characters, the lowest-ranked adjacent pair merges first, and a character outside the vocabulary
/// becomes its UTF-8 bytes as <c>&lt;0xXX&gt;</c> tokens (<c>byte_fallback</c>) or the unknown token.
/// </summary>
internal sealed class SentencePieceBpe
{
    private const char Meta = '▁';

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int Id)> _merges; // (left id, right id) → rank, merged id
    private readonly bool _byteFallback, _fuseUnk, _prepend, _prependFirstOnly;
    private readonly int? _unk;
    private readonly int[] _byteIds; // id of <0xXX> per byte, -1 when absent

    /// <summary>True when decoding drops one leading space of the whole text (a <c>Strip</c> decoder).</summary>
    public bool StripLeadingSpace { get; }

    private SentencePieceBpe(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, bool byteFallback, bool fuseUnk, int? unk,
        bool prepend, bool prependFirstOnly, bool strip)
    {
        _vocab = vocab;
        _merges = merges;
        _byteFallback = byteFallback;
        _fuseUnk = fuseUnk;
        _unk = unk;
        _prepend = prepend;
        _prependFirstOnly = prependFirstOnly;
        StripLeadingSpace = strip;
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    /// <summary>True when <paramref name="root"/> describes a SentencePiece-style BPE (metaspace, no byte-level alphabet).</summary>
    public static bool Describes(System.Text.Json.JsonElement root) =>
        HfJson.Mentions(root, "normalizer", "Prepend") || HfJson.Mentions(root, "pre_tokenizer", "Metaspace") || HfJson.Mentions(root, "decoder", "ByteFallback");

    /// <summary>Builds the model from the parsed vocabulary and merges of <paramref name="path"/>.</summary>
    /// <exception cref="TokenizerException">A merge names a token the vocabulary lacks, or the settings are unsupported.</exception>
    public static SentencePieceBpe Create(string path, System.Text.Json.JsonElement root, System.Text.Json.JsonElement model, Dictionary<string, int> vocab, List<string> merges)
    {
        var ranks = new Dictionary<long, (int, int)>(merges.Count);
        for (int r = 0; r < merges.Count; r++)
        {
            int space = merges[r].Length < 3 ? -1 : merges[r].IndexOf(' ', 1); // "▁ ▁" splits at the second character
            if (space < 0) throw new TokenizerException($"{path}: merge {r} '{merges[r]}' is not two tokens");
            string a = merges[r][..space], b = merges[r][(space + 1)..];
            if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib) || !vocab.TryGetValue(a + b, out int merged))
                throw new TokenizerException($"{path}: merge {r} '{merges[r]}' names a token that is not in model.vocab");
            ranks.TryAdd(Key(ia, ib), (r, merged));
        }
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == System.Text.Json.JsonValueKind.True;
        bool fuseUnk = model.TryGetProperty("fuse_unk", out var fu) && fu.ValueKind == System.Text.Json.JsonValueKind.True;
        int? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == System.Text.Json.JsonValueKind.String && vocab.TryGetValue(u.GetString()!, out int uid) ? uid : null;
        // Metaspace's prepend_scheme: "always" (every section), "first" (only the text's first section), "never"
        var metaspace = HfJson.Find(root, "pre_tokenizer", "Metaspace");
        var scheme = metaspace is { } ms
            ? ms.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == System.Text.Json.JsonValueKind.String ? ps.GetString()
              : ms.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == System.Text.Json.JsonValueKind.False ? "never" : "always"
            : HfJson.Mentions(root, "normalizer", "Prepend") ? "always" : "never";
        if (metaspace is { } m && m.TryGetProperty("split", out var split) && split.ValueKind == System.Text.Json.JsonValueKind.True)
            throw new TokenizerException($"{path}: a Metaspace pre-tokenizer with split = true is not supported");
        return new SentencePieceBpe(vocab, ranks, byteFallback, fuseUnk, unk, scheme is "always" or "first", scheme == "first",
            HfJson.Mentions(root, "decoder", "Strip"));
    }

    private static long Key(int a, int b) => (long)a << 32 | (uint)b;

    /// <summary>Encodes one section of text (no added tokens in it); <paramref name="first"/> when it starts the input.</summary>
    public void Encode(string text, bool first, List<int> ids)
    {
        if (text.Length == 0) return;
        var sb = new StringBuilder(text.Length + 1);
        if (_prepend && (first || !_prependFirstOnly)) sb.Append(Meta);
        foreach (char c in text) sb.Append(c == ' ' ? Meta : c);
        var symbols = Symbols(sb.ToString());
        Merge(symbols);
        foreach (int id in symbols) if (id >= 0) ids.Add(id);
    }

    // one symbol per character; a character outside the vocabulary becomes byte tokens or the unknown token
    private List<int> Symbols(string s)
    {
        var symbols = new List<int>(s.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < s.Length;)
        {
            int len = char.IsSurrogatePair(s, i) ? 2 : 1;
            string ch = s.Substring(i, len);
            i += len;
            if (_vocab.TryGetValue(ch, out int id)) { symbols.Add(id); continue; }
            int n = Encoding.UTF8.GetBytes(ch, utf8);
            bool bytesKnown = _byteFallback;
            for (int k = 0; k < n && bytesKnown; k++) bytesKnown = _byteIds[utf8[k]] >= 0;
            if (bytesKnown)
                for (int k = 0; k < n; k++) symbols.Add(_byteIds[utf8[k]]);
            else if (_unk is int unk)
            {
                if (!(_fuseUnk && symbols.Count > 0 && symbols[^1] == unk)) symbols.Add(unk);
            }
            else throw new TokenizerException($"character U+{char.ConvertToUtf32(ch, 0):X4} is not in the vocabulary, which has no byte fallback and no unknown token");
        }
        return symbols;
    }

    // repeatedly merges the adjacent pair of lowest rank (leftmost on ties): a heap of candidate pairs over a
    // linked list of symbols, stale candidates skipped, O(n log n)
    private void Merge(List<int> sym)
    {
        int n = sym.Count;
        if (n < 2) return;
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
        var heap = new PriorityQueue<(int Left, int LeftId, int RightId), (int Rank, int Pos)>();
        void Push(int left)
        {
            int right = next[left];
            if (right >= 0 && _merges.TryGetValue(Key(sym[left], sym[right]), out var m)) heap.Enqueue((left, sym[left], sym[right]), (m.Rank, left));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (heap.TryDequeue(out var c, out _))
        {
            int right = next[c.Left];
            if (sym[c.Left] != c.LeftId || right < 0 || sym[right] != c.RightId) continue; // stale
            sym[c.Left] = _merges[Key(c.LeftId, c.RightId)].Id;
            sym[right] = -1;
            next[c.Left] = next[right];
            if (next[right] >= 0) prev[next[right]] = c.Left;
            if (prev[c.Left] >= 0) Push(prev[c.Left]);
            Push(c.Left);
        }
    }

    /// <summary>Appends the bytes of vocabulary token <paramref name="token"/>: <c>▁</c> is a space, <c>&lt;0xXX&gt;</c> one byte.</summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
            byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
        {
            bytes.Add(b);
            return;
        }
        bytes.AddRange(Encoding.UTF8.GetBytes(token.Replace(Meta, ' ')));
    }
}
