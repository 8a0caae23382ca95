using System.Globalization;

namespace TpLlm.Chat.Jinja;

/// <summary>The <c>|</c> filters the chat templates of Llama, Qwen, Mistral and their relatives use.</summary>
internal static class Filters
{
    public static object? Apply(Interpreter interp, string name, object? v, List<object?> args, Dictionary<string, object?> kwargs, int line)
    {
        object? Arg(int i, string key, object? dflt = null) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var k) ? k : dflt;
        switch (name)
        {
            case "trim": return Arg(0, "chars") is string chars ? Py.Str(v).Trim(chars.ToCharArray()) : Py.Str(v).Trim();
            case "length" or "count":
                return v switch
                {
                    string s => (long)s.Length, List<object?> l => (long)l.Count, Dictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L, _ => throw Lexer.Error(line, $"a {Py.TypeName(v)} has no length"),
                };
            case "tojson":
                return Py.ToJson(v, Arg(0, "indent") is long indent ? (int)indent : null, line);
            case "string": return Py.Str(v);
            case "upper": return Py.Str(v).ToUpperInvariant();
            case "lower": return Py.Str(v).ToLowerInvariant();
            case "title": return Title(Py.Str(v));
            case "capitalize": var c = Py.Str(v); return c.Length == 0 ? c : char.ToUpperInvariant(c[0]) + c[1..].ToLowerInvariant();
            case "safe" or "e" or "escape" or "forceescape": return v; // no autoescaping: prompts are not HTML
            case "default" or "d":
                bool boolean = Py.Truthy(Arg(1, "boolean", false));
                return v is Undefined || (boolean && !Py.Truthy(v)) ? Arg(0, "default_value", "") : v;
            case "first": return Py.Iterate(v, line) is { Count: > 0 } f ? f[0] : new Undefined("first");
            case "last": return Py.Iterate(v, line) is { Count: > 0 } la ? la[^1] : new Undefined("last");
            case "join":
                var items = Py.Iterate(v, line);
                if (Arg(1, "attribute") is string attr) items = items.Select(x => Members.GetAttribute(x, attr, line)).ToList();
                return string.Join(Py.Str(Arg(0, "d", "")), items.Select(Py.Str));
            case "list": return Py.Iterate(v, line).ToList();
            case "items":
                return v is Dictionary<string, object?> dict ? dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                    : v is Undefined ? new List<object?>() : throw Lexer.Error(line, $"items needs a mapping, not a {Py.TypeName(v)}");
            case "reverse": return v is string rs ? new string(rs.Reverse().ToArray()) : Enumerable.Reverse(Py.Iterate(v, line)).ToList();
            case "replace":
                return Arg(0, "old") is string old && old.Length > 0 ? Py.Str(v).Replace(old, Py.Str(Arg(1, "new", "")), StringComparison.Ordinal) : Py.Str(v);
            case "int":
                return v switch
                {
                    long l => l, double dd => (long)dd, bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (double)l, double dd => dd,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs": return v switch { long l => (object)Math.Abs(l), double dd => (object)Math.Abs(dd), _ => throw Lexer.Error(line, $"abs needs a number, not a {Py.TypeName(v)}") };
            case "round": return Math.Round(Py.ToDouble(v), Arg(0, "precision") is long prec ? (int)prec : 0, MidpointRounding.ToEven);
            case "unique":
                var seen = new List<object?>();
                foreach (var x in Py.Iterate(v, line)) if (!seen.Any(y => Py.Eq(x, y))) seen.Add(x);
                return seen;
            case "sum": return Py.Iterate(v, line).Aggregate((object?)0L, (acc, x) => Operators.Apply("+", acc, x, line));
            case "min" or "max":
                var all = Py.Iterate(v, line);
                if (all.Count == 0) return new Undefined(name);
                return all.Aggregate((a, b) => (Py.Compare(b, a, line) < 0) == (name == "min") ? b : a);
            case "sort":
                var sorted = Py.Iterate(v, line).ToList();
                var key = Arg(2, "attribute") as string;
                sorted.Sort((a, b) => Py.Compare(key is null ? a : Members.GetAttribute(a, key, line), key is null ? b : Members.GetAttribute(b, key, line), line));
                if (Py.Truthy(Arg(0, "reverse", false))) sorted.Reverse();
                return sorted;
            case "dictsort":
                return v is Dictionary<string, object?> ds ? ds.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()
                    : throw Lexer.Error(line, $"dictsort needs a mapping, not a {Py.TypeName(v)}");
            case "indent": return Indent(Py.Str(v), Arg(0, "width", 4L), Py.Truthy(Arg(1, "first", false)));
            case "wordcount": return (long)Py.Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "select" or "reject":
                return Py.Iterate(v, line).Where(x => TestOrTruthy(x, args, 0, line) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
                if (Arg(0, "attr") is not string at) throw Lexer.Error(line, $"{name} needs an attribute name");
                return Py.Iterate(v, line).Where(x => TestOrTruthy(Members.GetAttribute(x, at, line) , args, 1, line) == (name == "selectattr")).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var mattr))
                    return Py.Iterate(v, line).Select(x => AttributeOrDefault(x, Py.Str(mattr), kwargs, line)).ToList();
                if (args.Count > 0 && args[0] is string filter)
                    return Py.Iterate(v, line).Select(x => Apply(interp, filter, x, args.Skip(1).ToList(), [], line)).ToList();
                throw Lexer.Error(line, "map needs attribute=… or a filter name");
            default: throw Lexer.Error(line, $"unknown filter '{name}'");
        }
    }

    private static object? AttributeOrDefault(object? x, string attr, Dictionary<string, object?> kwargs, int line)
    {
        var value = Members.GetAttribute(x, attr, line);
        return value is Undefined && kwargs.TryGetValue("default", out var d) ? d : value;
    }

    // select/selectattr: with a test name, apply the test; without, use truthiness
    private static bool TestOrTruthy(object? x, List<object?> args, int testAt, int line) =>
        args.Count > testAt && args[testAt] is string test ? Tests.Apply(test, x, args.Skip(testAt + 1).ToList(), line) : Py.Truthy(x);

    public static string Title(string s)
    {
        var chars = s.ToCharArray();
        bool start = true;
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = start ? char.ToUpperInvariant(chars[i]) : char.ToLowerInvariant(chars[i]);
            start = !char.IsLetterOrDigit(chars[i]);
        }
        return new string(chars);
    }

    private static string Indent(string s, object? width, bool first)
    {
        var pad = width is string w ? w : new string(' ', (int)Math.Clamp(Py.ToDouble(width), 0, 1024));
        var lines = s.Split('\n');
        for (int i = first ? 0 : 1; i < lines.Length; i++) if (lines[i].Length > 0) lines[i] = pad + lines[i];
        return string.Join('\n', lines);
    }
}
