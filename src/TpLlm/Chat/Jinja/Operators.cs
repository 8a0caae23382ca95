namespace TpLlm.Chat.Jinja;

/// <summary>Binary operators with Python's rules (no implicit string conversion except <c>~</c>).</summary>
internal static class Operators
{
    public static object? Apply(string op, object? a, object? b, int line)
    {
        switch (op)
        {
            case "==": return Py.Eq(a, b);
            case "!=": return !Py.Eq(a, b);
            case "<": return Py.Compare(a, b, line) < 0;
            case ">": return Py.Compare(a, b, line) > 0;
            case "<=": return Py.Compare(a, b, line) <= 0;
            case ">=": return Py.Compare(a, b, line) >= 0;
            case "in": return Contains(b, a, line);
            case "not in": return !Contains(b, a, line);
            case "~": return Py.Str(a) + Py.Str(b);
            case "+":
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                return Arithmetic(op, a, b, line);
            case "*":
                if (a is string s && b is long n) return string.Concat(Enumerable.Repeat(s, (int)Math.Clamp(n, 0, 1 << 20)));
                if (a is List<object?> l && b is long k) return Enumerable.Repeat(l, (int)Math.Clamp(k, 0, 1 << 16)).SelectMany(x => x).ToList();
                return Arithmetic(op, a, b, line);
            default: return Arithmetic(op, a, b, line);
        }
    }

    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw Lexer.Error(line, $"'in <string>' needs a string on the left, not a {Py.TypeName(item)}"),
        List<object?> l => l.Any(x => Py.Eq(x, item)),
        Dictionary<string, object?> d => item is string key && d.ContainsKey(key),
        Undefined u => throw Lexer.Error(line, $"'{u.Name}' is undefined"),
        _ => throw Lexer.Error(line, $"a {Py.TypeName(container)} does not support 'in'"),
    };

    private static object Arithmetic(string op, object? a, object? b, int line)
    {
        if (!Py.IsNumber(a) || !Py.IsNumber(b))
            throw Lexer.Error(line, $"unsupported operand types for {op}: {Py.TypeName(a)} and {Py.TypeName(b)}");
        if (a is not double && b is not double && op != "/" && op != "**")
        {
            long x = (long)Py.ToDouble(a), y = (long)Py.ToDouble(b);
            switch (op)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "//": return y == 0 ? throw DivZero(line) : (long)Math.Floor((double)x / y);
                case "%": return y == 0 ? throw DivZero(line) : ((x % y) + y) % y;
            }
        }
        if (op == "**" && a is not double && b is long e && e >= 0) return (long)Math.Pow(Py.ToDouble(a), e);
        double p = Py.ToDouble(a), q = Py.ToDouble(b);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw DivZero(line) : p / q,
            "//" => q == 0 ? throw DivZero(line) : Math.Floor(p / q),
            "%" => q == 0 ? throw DivZero(line) : p - q * Math.Floor(p / q),
            "**" => Math.Pow(p, q),
            _ => throw Lexer.Error(line, $"unknown operator {op}"),
        };
    }

    private static ChatTemplateException DivZero(int line) => Lexer.Error(line, "division by zero");
}
