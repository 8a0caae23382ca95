namespace TpLlm.Chat.Jinja;

/// <summary>An expression of the template language. The cases are the nested records.</summary>
internal abstract record Expr(int Line)
{
    /// <summary>A constant: string, long, double, bool or null.</summary>
    public sealed record Literal(object? Value, int Line) : Expr(Line);
    /// <summary>A variable.</summary>
    public sealed record Name(string Id, int Line) : Expr(Line);
    /// <summary><c>[a, b]</c> or a tuple <c>(a, b)</c>.</summary>
    public sealed record ListExpr(Expr[] Items, int Line) : Expr(Line);
    /// <summary><c>{k: v}</c>.</summary>
    public sealed record DictExpr((Expr Key, Expr Value)[] Items, int Line) : Expr(Line);
    /// <summary><c>x.name</c>.</summary>
    public sealed record Attribute(Expr Target, string Attr, int Line) : Expr(Line);
    /// <summary><c>x[key]</c>.</summary>
    public sealed record Index(Expr Target, Expr Key, int Line) : Expr(Line);
    /// <summary><c>x[a:b:c]</c>.</summary>
    public sealed record Slice(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);
    /// <summary><c>f(args, name=value)</c>.</summary>
    public sealed record Call(Expr Target, Expr[] Args, (string Key, Expr Value)[] Kwargs, int Line) : Expr(Line);
    /// <summary><c>x | name(args)</c>.</summary>
    public sealed record Filter(Expr Target, string FilterName, Expr[] Args, (string Key, Expr Value)[] Kwargs, int Line) : Expr(Line);
    /// <summary><c>x is [not] name(args)</c>.</summary>
    public sealed record Test(Expr Target, string TestName, Expr[] Args, bool Negated, int Line) : Expr(Line);
    /// <summary>A binary operator, including <c>and</c>, <c>or</c>, <c>in</c> and <c>not in</c>.</summary>
    public sealed record Binary(string Op, Expr Left, Expr Right, int Line) : Expr(Line);
    /// <summary><c>not x</c>, <c>-x</c>, <c>+x</c>.</summary>
    public sealed record Unary(string Op, Expr Operand, int Line) : Expr(Line);
    /// <summary><c>a if cond else b</c> (b may be absent: undefined).</summary>
    public sealed record Conditional(Expr Then, Expr Condition, Expr? Else, int Line) : Expr(Line);
}
