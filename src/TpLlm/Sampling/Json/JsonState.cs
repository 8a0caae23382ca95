namespace TpLlm.Sampling.Json;

/// <summary>
/// Where a JSON text (RFC 8259) stands after some UTF-8 bytes: a pushdown recognizer small enough
/// to copy, so that trying a token's bytes on a copy forks the parse. The top-level value must be
/// an object (OpenAI's JSON mode). Strings must be well-formed UTF-8 without control characters;
/// nesting is limited to <see cref="MaxDepth"/>, and a run of whitespace to
/// <see cref="MaxWhitespaceAt"/> the depth: room for a line break and four spaces of indentation per
/// level, so a model cannot pad instead of writing the object (2 bytes before it starts).
/// <code>
///   {"a": [1, -2.5e3, true, null], "b": "x\u00e9"}   accepted, then only whitespace
/// </code>
/// </summary>
public struct JsonState
{
    /// <summary>Deepest nesting of objects and arrays.</summary>
    public const int MaxDepth = 64;

    /// <summary>Longest run of whitespace at nesting depth <paramref name="depth"/>, before the object is complete: 2 + 4 · depth bytes.</summary>
    public static int MaxWhitespaceAt(int depth) => 2 + 4 * depth;

    private enum Mode : byte
    {
        Start, Value, ArrayFirst, ObjectFirst, Key, Colon, After, Done,
        String, Escape, Unicode, Utf8, Literal,
        NumMinus, NumZero, NumInt, NumDot, NumFrac, NumExp, NumExpSign, NumExpDigits,
    }

    private ulong _objects; // bit d set: the container at depth d + 1 is an object (else an array)
    private byte _depth;
    private Mode _mode;
    private byte _sub;      // Literal: bytes matched; Unicode: hex digits read; Utf8: continuation bytes left
    private byte _low, _high; // Utf8: the range of the next continuation byte
    private byte _literal;  // 0 true, 1 false, 2 null
    private byte _space;    // whitespace bytes in the current run
    private bool _key;      // the string being read is an object key

    private static ReadOnlySpan<byte> True => "true"u8;
    private static ReadOnlySpan<byte> False => "false"u8;
    private static ReadOnlySpan<byte> Null => "null"u8;

    /// <summary>The top-level object is complete: only whitespace may follow.</summary>
    public readonly bool IsComplete => _mode == Mode.Done;

    /// <summary>
    /// Inside a string, between characters: any bytes without <c>"</c>, <c>\</c> or control characters that
    /// are well-formed UTF-8 (<see cref="IsStringSafe"/>) keep it there.
    /// </summary>
    public readonly bool InString => _mode == Mode.String;

    /// <summary>Whether <paramref name="bytes"/> leave a state that is <see cref="InString"/> in the same place (in the string).</summary>
    public static bool IsStringSafe(ReadOnlySpan<byte> bytes) =>
        !bytes.ContainsAnyInRange((byte)0, (byte)0x1F) && !bytes.ContainsAny((byte)'"', (byte)'\\') && System.Text.Unicode.Utf8.IsValid(bytes);

    /// <summary>Nesting depth now (0 outside the top-level object).</summary>
    public readonly int Depth => _depth;

    /// <summary>Feeds every byte of <paramref name="bytes"/>; false (and the state is spoiled) at the first byte no JSON object can continue with.</summary>
    public bool Feed(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
            if (!Feed(b)) return false;
        return true;
    }

    /// <summary>Feeds one byte; false (and the state is spoiled) when no JSON object can continue with it.</summary>
    public bool Feed(byte b)
    {
        switch (_mode)
        {
            case Mode.Start:
                if (IsSpace(b)) return Space();
                if (b != '{') return false;
                return BeginValue(b);
            case Mode.Value:
                return IsSpace(b) ? Space() : BeginValue(b);
            case Mode.ArrayFirst:
                if (IsSpace(b)) return Space();
                return b == ']' ? Close() : BeginValue(b);
            case Mode.ObjectFirst:
                if (IsSpace(b)) return Space();
                if (b == '}') return Close();
                return b == '"' && BeginString(key: true);
            case Mode.Key:
                if (IsSpace(b)) return Space();
                return b == '"' && BeginString(key: true);
            case Mode.Colon:
                if (IsSpace(b)) return Space();
                if (b != ':') return false;
                return To(Mode.Value);
            case Mode.After:
                if (IsSpace(b)) return Space();
                bool inObject = (_objects >> (_depth - 1) & 1) == 1;
                if (b == ',') return To(inObject ? Mode.Key : Mode.Value);
                return (inObject ? b == '}' : b == ']') && Close();
            case Mode.Done:
                return IsSpace(b); // unlimited: the caller decides whether the text may end
            case Mode.String:
                if (b == '"') return _key ? To(Mode.Colon) : EndValue();
                if (b == '\\') { _mode = Mode.Escape; return true; }
                if (b < 0x20) return false;
                if (b < 0x80) return true;
                return BeginUtf8(b);
            case Mode.Utf8:
                if (b < _low || b > _high) return false;
                (_low, _high) = (0x80, 0xBF);
                if (--_sub == 0) _mode = Mode.String;
                return true;
            case Mode.Escape:
                if (b == 'u') { _mode = Mode.Unicode; _sub = 0; return true; }
                if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t') { _mode = Mode.String; return true; }
                return false;
            case Mode.Unicode:
                if (!char.IsAsciiHexDigit((char)b)) return false;
                if (++_sub == 4) _mode = Mode.String;
                return true;
            case Mode.Literal:
                var word = _literal switch { 0 => True, 1 => False, _ => Null };
                if (b != word[_sub]) return false;
                return ++_sub < word.Length || EndValue();
            case Mode.NumMinus:
                if (b == '0') return To(Mode.NumZero);
                return IsDigit(b) && To(Mode.NumInt);
            case Mode.NumZero:
                return NumberPart(b) ?? EndNumber(b);
            case Mode.NumInt:
                if (IsDigit(b)) return true;
                return NumberPart(b) ?? EndNumber(b);
            case Mode.NumDot:
                return IsDigit(b) && To(Mode.NumFrac);
            case Mode.NumFrac:
                if (IsDigit(b)) return true;
                return b is (byte)'e' or (byte)'E' ? To(Mode.NumExp) : EndNumber(b);
            case Mode.NumExp:
                if (b is (byte)'+' or (byte)'-') return To(Mode.NumExpSign);
                return IsDigit(b) && To(Mode.NumExpDigits);
            case Mode.NumExpSign:
                return IsDigit(b) && To(Mode.NumExpDigits);
            case Mode.NumExpDigits:
                return IsDigit(b) || EndNumber(b);
            default:
                return false;
        }
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    private bool Space()
    {
        if (_space >= MaxWhitespaceAt(_depth)) return false;
        _space++;
        return true;
    }

    private bool To(Mode mode)
    {
        _mode = mode;
        _space = 0;
        return true;
    }

    // after an integer part: '.' or an exponent continue the number; anything else ends it (null)
    private bool? NumberPart(byte b) => b switch
    {
        (byte)'.' => To(Mode.NumDot),
        (byte)'e' or (byte)'E' => To(Mode.NumExp),
        _ => null,
    };

    private bool BeginValue(byte b)
    {
        switch (b)
        {
            case (byte)'{': return Open(true);
            case (byte)'[': return Open(false);
            case (byte)'"': return BeginString(key: false);
            case (byte)'-': return To(Mode.NumMinus);
            case (byte)'0': return To(Mode.NumZero);
            case >= (byte)'1' and <= (byte)'9': return To(Mode.NumInt);
            case (byte)'t': _literal = 0; break;
            case (byte)'f': _literal = 1; break;
            case (byte)'n': _literal = 2; break;
            default: return false;
        }
        _sub = 1;
        return To(Mode.Literal);
    }

    // RFC 3629's well-formed sequences: no overlong forms, no surrogates, nothing above U+10FFFF
    private bool BeginUtf8(byte b)
    {
        (_sub, _low, _high) = b switch
        {
            >= 0xC2 and <= 0xDF => ((byte)1, (byte)0x80, (byte)0xBF),
            0xE0 => ((byte)2, (byte)0xA0, (byte)0xBF),
            0xED => ((byte)2, (byte)0x80, (byte)0x9F),
            >= 0xE1 and <= 0xEF => ((byte)2, (byte)0x80, (byte)0xBF),
            0xF0 => ((byte)3, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => ((byte)3, (byte)0x80, (byte)0xBF),
            0xF4 => ((byte)3, (byte)0x80, (byte)0x8F),
            _ => ((byte)0, (byte)0, (byte)0),
        };
        if (_sub == 0) return false;
        _mode = Mode.Utf8;
        return true;
    }

    private bool BeginString(bool key)
    {
        _key = key;
        return To(Mode.String);
    }

    private bool Open(bool isObject)
    {
        if (_depth == MaxDepth) return false;
        if (isObject) _objects |= 1UL << _depth;
        else _objects &= ~(1UL << _depth);
        _depth++;
        return To(isObject ? Mode.ObjectFirst : Mode.ArrayFirst);
    }

    private bool Close()
    {
        _depth--;
        return EndValue();
    }

    private bool EndValue() => To(_depth == 0 ? Mode.Done : Mode.After);

    // a number ends at the first byte that cannot continue it; that byte is read after the number
    private bool EndNumber(byte b) => EndValue() && Feed(b);
}
