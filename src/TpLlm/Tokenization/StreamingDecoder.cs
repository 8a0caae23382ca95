using System.Text;

namespace TpLlm.Tokenization;

/// <summary>
/// Turns token ids into text as they arrive. A multi-byte character split across tokens is held
/// back until its last byte arrives, then comes out whole.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly HfTokenizer _tokenizer;
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private readonly List<byte> _bytes = new(64);
    private char[] _chars = new char[64];

    private readonly bool _skipSpecial;

    internal StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecialTokens;
    }

    /// <summary>Adds one token; returns the text completed by it (possibly empty; always empty for a skipped special token).</summary>
    public string Add(int id)
    {
        if (_skipSpecial && _tokenizer.IsSpecial(id)) return "";
        _bytes.Clear();
        _tokenizer.AppendBytes(id, _bytes);
        return Convert(flush: false);
    }

    /// <summary>Returns what is still held back (invalid trailing bytes become U+FFFD).</summary>
    public string Flush()
    {
        _bytes.Clear();
        return Convert(flush: true);
    }

    private string Convert(bool flush)
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_bytes);
        int need = _utf8.GetCharCount(span, flush: false) + 4;
        if (_chars.Length < need) _chars = new char[need * 2];
        int n = _utf8.GetChars(span, _chars, flush);
        return new string(_chars, 0, n);
    }
}
