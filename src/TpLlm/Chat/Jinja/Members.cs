namespace TpLlm.Chat.Jinja;

/// <summary>Attribute access, subscripts, slices, and the string/dict methods templates call.</summary>
internal static class Members
{
    public static object? GetAttribute(object? target, string name, int line)
    {
        if (target is Undefined u) throw Lexer.Error(line, $"'{(u.Name.Length > 0 ? u.Name : "value")}' is undefined (reading .{name})");
        if (target is Dictionary<string, object?> d && d.TryGetValue(name, out var v)) return v;
        return (object?)Method(target, name, line) ?? new Undefined(name);
    }

    public static object? GetItem(object? target, object? key, int line)
    {
        switch (target)
        {
            case Undefined u: throw Lexer.Error(line, $"'{(u.Name.Length > 0 ? u.Name : "value")}' is undefined (reading [{Py.Repr(key)}])");
            case Dictionary<string, object?> d:
                return key is string s && d.TryGetValue(s, out var v) ? v : key is string s2 ? (object?)Method(target, s2, line) ?? new Undefined(s2) : new Undefined(Py.Repr(key));
            case List<object?> l when key is long i:
                long j = i < 0 ? i + l.Count : i;
                return j >= 0 && j < l.Count ? l[(int)j] : throw Lexer.Error(line, $"list index {i} is out of range for a list of {l.Count}");
            case string str when key is long i:
                long k = i < 0 ? i + str.Length : i;
                return k >= 0 && k < str.Length ? str[(int)k].ToString() : throw Lexer.Error(line, $"string index {i} is out of range for a string of {str.Length}");
            default:
                if (key is string name) return GetAttribute(target, name, line);
                throw Lexer.Error(line, $"a {Py.TypeName(target)} cannot be indexed by a {Py.TypeName(key)}");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step, int line)
    {
        long st = step is long s ? s : 1;
        if (st == 0) throw Lexer.Error(line, "slice step cannot be zero");
        int n = target switch { List<object?> l => l.Count, string str => str.Length, _ => throw Lexer.Error(line, $"a {Py.TypeName(target)} cannot be sliced") };
        var idx = new List<int>();
        if (st > 0)
            for (long i = Adjust(start, 0, 0, n, n), end = Adjust(stop, n, 0, n, n); i < end; i += st) idx.Add((int)i);
        else
            for (long i = Adjust(start, n - 1, -1, n - 1, n), end = Adjust(stop, -1, -1, n - 1, n); i > end; i += st) idx.Add((int)i);
        return target is string text ? string.Concat(idx.Select(i => text[i])) : idx.Select(i => ((List<object?>)target)[i]).ToList();
    }

    // Python's slice bounds: negative counts from the end, then clamped to [lower, upper]
    private static long Adjust(object? v, long dflt, long lower, long upper, int n)
    {
        if (v is not long i) return dflt;
        if (i < 0) i += n;
        return Math.Clamp(i, lower, upper);
    }

    private static Callable? Method(object? target, string name, int line) => target switch
    {
        string s => StringMethod(s, name, line),
        Dictionary<string, object?> d and not Namespace => DictMethod(d, name),
        _ => null,
    };

    private static Callable? StringMethod(string s, string name, int line)
    {
        Func<List<object?>, string?> arg0 = a => a.Count > 0 && a[0] is string c ? c : null;
        return name switch
        {
            "strip" => new(name, (a, _) => arg0(a) is { } c ? s.Trim(c.ToCharArray()) : s.Trim()),
            "lstrip" => new(name, (a, _) => arg0(a) is { } c ? s.TrimStart(c.ToCharArray()) : s.TrimStart()),
            "rstrip" => new(name, (a, _) => arg0(a) is { } c ? s.TrimEnd(c.ToCharArray()) : s.TrimEnd()),
            "upper" => new(name, (_, _) => s.ToUpperInvariant()),
            "lower" => new(name, (_, _) => s.ToLowerInvariant()),
            "title" => new(name, (_, _) => Filters.Title(s)),
            "capitalize" => new(name, (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant()),
            "startswith" => new(name, (a, _) => a.Count > 0 && a[0] is string p && s.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => new(name, (a, _) => a.Count > 0 && a[0] is string p && s.EndsWith(p, StringComparison.Ordinal)),
            "replace" => new(name, (a, _) => a.Count >= 2 && a[0] is string o && o.Length > 0 ? s.Replace(o, Py.Str(a[1]), StringComparison.Ordinal) : s),
            "split" => new(name, (a, _) => Split(s, arg0(a), a.Count > 1 && a[1] is long m ? (int)m : -1)),
            "join" => new(name, (a, _) => string.Join(s, Py.Iterate(a.Count > 0 ? a[0] : null, line).Select(Py.Str))),
            "find" => new(name, (a, _) => (long)s.IndexOf(arg0(a) ?? "", StringComparison.Ordinal)),
            "count" => new(name, (a, _) => arg0(a) is { Length: > 0 } c ? (long)((s.Length - s.Replace(c, "", StringComparison.Ordinal).Length) / c.Length) : (long)s.Length + 1),
            _ => null,
        };
    }

    private static List<object?> Split(string s, string? sep, int max)
    {
        if (sep is null) return s.Split((char[]?)null, max < 0 ? int.MaxValue : max + 1, StringSplitOptions.RemoveEmptyEntries).Select(x => (object?)x).ToList();
        return s.Split(sep, max < 0 ? int.MaxValue : max + 1).Select(x => (object?)x).ToList();
    }

    private static Callable? DictMethod(Dictionary<string, object?> d, string name) => name switch
    {
        "items" => new(name, (_, _) => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()),
        "keys" => new(name, (_, _) => d.Keys.Select(k => (object?)k).ToList()),
        "values" => new(name, (_, _) => d.Values.ToList()),
        "get" => new(name, (a, _) => a.Count > 0 && a[0] is string k && d.TryGetValue(k, out var v) ? v : a.Count > 1 ? a[1] : null),
        _ => null,
    };
}
