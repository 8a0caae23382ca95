using System.Globalization;
using System.Text;

namespace TpLlm.Chat.Jinja;

/// <summary>
/// Splits a template into tokens the way Hugging Face's Jinja environment does: <c>trim_blocks</c>
/// (the first newline after a block tag goes) and <c>lstrip_blocks</c> (spaces before a block tag at
/// the start of a line go), plus the <c>-</c> markers that strip all whitespace on one side of a tag.
/// </summary>
internal static class Lexer
{
    private static readonly string[] Operators = ["//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|", "~", "+", "-", "*", "/", "%", "<", ">", "="];

    public static List<Token> Tokenize(string src)
    {
        var tokens = new List<Token>();
        int pos = 0, line = 1;
        bool afterTag = false;
        while (pos < src.Length)
        {
            int start = NextTag(src, pos);
            var text = src[pos..start];
            if (start < src.Length)
            {
                char kind = src[start + 1];
                char marker = start + 2 < src.Length ? src[start + 2] : '\0';
                if (marker == '-') text = text.TrimEnd();
                else if (kind != '{' && marker != '+') text = LstripLine(text, atTemplateStart: !afterTag);
            }
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
            line += Count(src, pos, start);
            if (start >= src.Length) break;
            pos = LexTag(src, start, tokens, ref line);
            afterTag = true;
        }
        tokens.Add(new Token(TokenKind.End, "", line));
        return tokens;
    }

    private static int NextTag(string src, int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
            if (src[i + 1] is '{' or '%' or '#') return i;
        return src.Length;
    }

    // lstrip_blocks: drop the spaces and tabs between the last newline and the tag, when only those are there
    private static string LstripLine(string text, bool atTemplateStart)
    {
        int nl = text.LastIndexOf('\n');
        if (nl < 0 && !atTemplateStart) return text;
        for (int i = nl + 1; i < text.Length; i++) if (text[i] is not (' ' or '\t')) return text;
        return text[..(nl + 1)];
    }

    private static int LexTag(string src, int start, List<Token> tokens, ref int line)
    {
        char kind = src[start + 1];
        int pos = start + 2;
        if (pos < src.Length && src[pos] is '-' or '+') pos++;
        if (kind == '#')
        {
            int close = src.IndexOf("#}", pos, StringComparison.Ordinal);
            if (close < 0) throw Error(line, "a comment opened with {# is never closed");
            line += Count(src, start, close);
            return AfterTag(src, close + 2, src[close - 1] == '-', block: true);
        }
        string closer = kind == '{' ? "}}" : "%}";
        tokens.Add(new Token(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin, "", line));
        while (true)
        {
            while (pos < src.Length && char.IsWhiteSpace(src[pos])) { if (src[pos] == '\n') line++; pos++; }
            if (pos >= src.Length) throw Error(line, $"a tag is never closed with {closer}");
            bool strip = src[pos] == '-' && string.CompareOrdinal(src, pos + 1, closer, 0, 2) == 0;
            if (strip || string.CompareOrdinal(src, pos, closer, 0, 2) == 0)
            {
                tokens.Add(new Token(kind == '{' ? TokenKind.VariableEnd : TokenKind.BlockEnd, "", line));
                return AfterTag(src, pos + (strip ? 3 : 2), strip, block: kind == '%');
            }
            pos = LexExpressionToken(src, pos, tokens, line);
        }
    }

    private static int AfterTag(string src, int pos, bool strip, bool block)
    {
        if (strip) { while (pos < src.Length && char.IsWhiteSpace(src[pos])) pos++; }
        else if (block && pos < src.Length)
        {
            if (src[pos] == '\n') pos++;
            else if (src[pos] == '\r' && pos + 1 < src.Length && src[pos + 1] == '\n') pos += 2;
        }
        return pos;
    }

    private static int LexExpressionToken(string src, int pos, List<Token> tokens, int line)
    {
        char c = src[pos];
        if (char.IsLetter(c) || c == '_')
        {
            int e = pos;
            while (e < src.Length && (char.IsLetterOrDigit(src[e]) || src[e] == '_')) e++;
            tokens.Add(new Token(TokenKind.Name, src[pos..e], line));
            return e;
        }
        if (char.IsDigit(c))
        {
            int e = pos;
            while (e < src.Length && (char.IsDigit(src[e]) || src[e] == '_')) e++;
            bool isFloat = e + 1 < src.Length && src[e] == '.' && char.IsDigit(src[e + 1]);
            if (isFloat) { e++; while (e < src.Length && char.IsDigit(src[e])) e++; }
            var digits = src[pos..e].Replace("_", "");
            tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, digits, line));
            return e;
        }
        if (c is '\'' or '"') return LexString(src, pos, tokens, line);
        foreach (var op in Operators)
            if (string.CompareOrdinal(src, pos, op, 0, op.Length) == 0)
            {
                tokens.Add(new Token(TokenKind.Operator, op, line));
                return pos + op.Length;
            }
        throw Error(line, $"unexpected character '{c}'");
    }

    private static int LexString(string src, int pos, List<Token> tokens, int line)
    {
        char quote = src[pos];
        var sb = new StringBuilder();
        int i = pos + 1;
        for (; i < src.Length && src[i] != quote; i++)
        {
            if (src[i] != '\\' || i + 1 >= src.Length) { sb.Append(src[i]); continue; }
            char e = src[++i];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'u' when i + 4 < src.Length && int.TryParse(src.AsSpan(i + 1, 4), NumberStyles.HexNumber, null, out int u):
                    sb.Append((char)u); i += 4; break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        if (i >= src.Length) throw Error(line, "a string literal is never closed");
        tokens.Add(new Token(TokenKind.String, sb.ToString(), line));
        return i + 1;
    }

    private static int Count(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == '\n') n++;
        return n;
    }

    public static ChatTemplateException Error(int line, string message) => new($"chat template line {line}: {message}");
}
