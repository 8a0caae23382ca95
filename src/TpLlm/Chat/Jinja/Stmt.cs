namespace TpLlm.Chat.Jinja;

/// <summary>A statement of the template language. The cases are the nested records.</summary>
internal abstract record Stmt(int Line)
{
    /// <summary>Literal text.</summary>
    public sealed record Text(string Value, int Line) : Stmt(Line);
    /// <summary><c>{{ expr }}</c>.</summary>
    public sealed record Output(Expr Value, int Line) : Stmt(Line);
    /// <summary><c>{% if %}…{% elif %}…{% else %}…{% endif %}</c>.</summary>
    public sealed record If((Expr Condition, Stmt[] Body)[] Branches, Stmt[] Else, int Line) : Stmt(Line);
    /// <summary><c>{% for a, b in items if cond %}…{% else %}…{% endfor %}</c>.</summary>
    public sealed record For(string[] Targets, Expr Items, Expr? Filter, Stmt[] Body, Stmt[] Else, int Line) : Stmt(Line);
    /// <summary><c>{% set x = v %}</c>, <c>{% set ns.x = v %}</c> or <c>{% set a, b = v %}</c>.</summary>
    public sealed record Set(string[] Targets, string? Attr, Expr Value, int Line) : Stmt(Line);
    /// <summary><c>{% set x %}…{% endset %}</c>.</summary>
    public sealed record SetBlock(string Target, Stmt[] Body, int Line) : Stmt(Line);
    /// <summary><c>{% macro name(a, b=1) %}…{% endmacro %}</c>.</summary>
    public sealed record Macro(string Name, string[] Params, Expr?[] Defaults, Stmt[] Body, int Line) : Stmt(Line);
    /// <summary><c>{% break %}</c>.</summary>
    public sealed record Break(int Line) : Stmt(Line);
    /// <summary><c>{% continue %}</c>.</summary>
    public sealed record Continue(int Line) : Stmt(Line);
}
