namespace TpLlm.Chat.Jinja;

/// <summary>The <c>is</c> tests (<c>defined</c>, <c>none</c>, <c>string</c>, <c>equalto</c>, …).</summary>
internal static class Tests
{
    public static bool Apply(string name, object? v, List<object?> args, int line)
    {
        object? Arg() => args.Count > 0 ? args[0] : throw Lexer.Error(line, $"test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "mapping" => v is Dictionary<string, object?>,
            "sequence" => v is List<object?> or string or Dictionary<string, object?>,
            "iterable" => v is List<object?> or string or Dictionary<string, object?>,
            "callable" => v is Callable,
            "odd" => v is long o && o % 2 != 0,
            "even" => v is long e && e % 2 == 0,
            "divisibleby" => v is long x && Arg() is long y && y != 0 && x % y == 0,
            "lower" => v is string s && s == s.ToLowerInvariant(),
            "upper" => v is string u && u == u.ToUpperInvariant(),
            "equalto" or "eq" or "==" or "sameas" => Py.Eq(v, Arg()),
            "ne" or "!=" => !Py.Eq(v, Arg()),
            "lt" or "lessthan" or "<" => Py.Compare(v, Arg(), line) < 0,
            "gt" or "greaterthan" or ">" => Py.Compare(v, Arg(), line) > 0,
            "le" or "<=" => Py.Compare(v, Arg(), line) <= 0,
            "ge" or ">=" => Py.Compare(v, Arg(), line) >= 0,
            "in" => Operators.Contains(Arg(), v, line),
            _ => throw Lexer.Error(line, $"unknown test '{name}'"),
        };
    }
}
