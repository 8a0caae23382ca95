using System.Text;

namespace TpLlm.Chat.Jinja;

/// <summary>Runs a parsed template against a set of variables and returns the text.</summary>
internal sealed class Interpreter
{
    private const int MaxOutput = 16 << 20;
    private const int MaxSteps = 2_000_000;
    private readonly List<Dictionary<string, object?>> _scopes = [];
    private const int MaxCallDepth = 64;
    private int _steps;
    private int _callDepth;

    private Interpreter(Dictionary<string, object?> globals)
    {
        _scopes.Add(Globals.Create());
        _scopes.Add(new Dictionary<string, object?>(globals, StringComparer.Ordinal));
    }

    public static string Render(Stmt[] program, Dictionary<string, object?> variables)
    {
        var sb = new StringBuilder();
        new Interpreter(variables).Exec(program, sb);
        return sb.ToString();
    }

    private Flow Exec(Stmt[] body, StringBuilder sb)
    {
        foreach (var s in body)
        {
            Step(s.Line);
            if (sb.Length > MaxOutput) throw Lexer.Error(s.Line, $"the rendered prompt is over {MaxOutput} characters");
            var flow = Exec(s, sb);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    // every statement and every loop iteration counts against the bound
    private void Step(int line)
    {
        if (++_steps > MaxSteps) throw Lexer.Error(line, $"rendering took more than {MaxSteps} steps");
    }

    private Flow Exec(Stmt s, StringBuilder sb)
    {
        switch (s)
        {
            case Stmt.Text t: sb.Append(t.Value); return Flow.Normal;
            case Stmt.Output o: sb.Append(Py.Str(Eval(o.Value))); return Flow.Normal;
            case Stmt.If i:
                foreach (var (cond, branch) in i.Branches)
                    if (Py.Truthy(Eval(cond))) return Exec(branch, sb);
                return Exec(i.Else, sb);
            case Stmt.For f: return ExecFor(f, sb);
            case Stmt.Set set: ExecSet(set); return Flow.Normal;
            case Stmt.SetBlock sb2:
                var inner = new StringBuilder();
                Exec(sb2.Body, inner);
                _scopes[^1][sb2.Target] = inner.ToString();
                return Flow.Normal;
            case Stmt.Macro m: _scopes[^1][m.Name] = MakeMacro(m); return Flow.Normal;
            case Stmt.Break: return Flow.Break;
            case Stmt.Continue: return Flow.Continue;
            default: throw Lexer.Error(s.Line, $"unknown statement {s.GetType().Name}");
        }
    }

    private Flow ExecFor(Stmt.For f, StringBuilder sb)
    {
        var source = Py.Iterate(Eval(f.Items), f.Line);
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        _scopes.Add(scope);
        try
        {
            var items = source;
            if (f.Filter is not null)
            {
                items = [];
                foreach (var item in source)
                {
                    Bind(scope, f.Targets, item, f.Line);
                    if (Py.Truthy(Eval(f.Filter))) items.Add(item);
                }
            }
            if (items.Count == 0) { scope.Clear(); return Exec(f.Else, sb); }
            for (int i = 0; i < items.Count; i++)
            {
                Step(f.Line);
                scope.Clear();
                Bind(scope, f.Targets, items[i], f.Line);
                scope["loop"] = LoopInfo(items, i);
                if (Exec(f.Body, sb) == Flow.Break) break;
            }
            return Flow.Normal;
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
        }
    }

    private static Dictionary<string, object?> LoopInfo(List<object?> items, int i) => new(StringComparer.Ordinal)
    {
        ["index"] = (long)(i + 1), ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
        ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
        ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
        ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new Undefined("loop.nextitem"),
    };

    private static void Bind(Dictionary<string, object?> scope, string[] targets, object? item, int line)
    {
        if (targets.Length == 1) { scope[targets[0]] = item; return; }
        if (item is not List<object?> parts || parts.Count != targets.Length)
            throw Lexer.Error(line, $"cannot unpack a {Py.TypeName(item)} into {targets.Length} names");
        for (int k = 0; k < targets.Length; k++) scope[targets[k]] = parts[k];
    }

    private void ExecSet(Stmt.Set set)
    {
        var value = Eval(set.Value);
        if (set.Attr is not null)
        {
            if (Lookup(set.Targets[0]) is not Namespace ns)
                throw Lexer.Error(set.Line, $"'{set.Targets[0]}' is not a namespace(); only namespace attributes can be set");
            ns[set.Attr] = value;
            return;
        }
        Bind(_scopes[^1], set.Targets, value, set.Line);
    }

    private Callable MakeMacro(Stmt.Macro m) => new(m.Name, (args, kwargs) =>
    {
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (int i = 0; i < m.Params.Length; i++)
            scope[m.Params[i]] = i < args.Count ? args[i]
                : kwargs.TryGetValue(m.Params[i], out var kv) ? kv
                : m.Defaults[i] is { } d ? Eval(d) : new Undefined(m.Params[i]);
        if (++_callDepth > MaxCallDepth) { _callDepth--; throw Lexer.Error(m.Line, $"macro '{m.Name}' calls nest deeper than {MaxCallDepth}"); }
        _scopes.Add(scope);
        try
        {
            var sb = new StringBuilder();
            Exec(m.Body, sb);
            return sb.ToString();
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
            _callDepth--;
        }
    });

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out var v)) return v;
        return new Undefined(name);
    }

    public object? Eval(Expr e)
    {
        switch (e)
        {
            case Expr.Literal l: return l.Value;
            case Expr.Name n: return Lookup(n.Id);
            case Expr.ListExpr l: return l.Items.Select(Eval).ToList();
            case Expr.DictExpr d:
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in d.Items) dict[Py.Str(Eval(k))] = Eval(v);
                return dict;
            case Expr.Attribute a: return Members.GetAttribute(Eval(a.Target), a.Attr, a.Line);
            case Expr.Index ix: return Members.GetItem(Eval(ix.Target), Eval(ix.Key), ix.Line);
            case Expr.Slice s: return Members.Slice(Eval(s.Target), EvalOpt(s.Start), EvalOpt(s.Stop), EvalOpt(s.Step), s.Line);
            case Expr.Call c:
                var target = Eval(c.Target);
                if (target is not Callable fn) throw Lexer.Error(c.Line, $"{Describe(c.Target)} is a {Py.TypeName(target)}, not a function");
                return fn.Invoke(c.Args.Select(Eval).ToList(), c.Kwargs.ToDictionary(k => k.Key, k => Eval(k.Value)));
            case Expr.Filter f:
                return Filters.Apply(this, f.FilterName, Eval(f.Target), f.Args.Select(Eval).ToList(), f.Kwargs.ToDictionary(k => k.Key, k => Eval(k.Value)), f.Line);
            case Expr.Test t:
                return Tests.Apply(t.TestName, Eval(t.Target), t.Args.Select(Eval).ToList(), t.Line) != t.Negated;
            case Expr.Unary u:
                var operand = Eval(u.Operand);
                return u.Op switch
                {
                    "not" => !Py.Truthy(operand),
                    "-" => operand switch { long x => (object)(-x), double x => (object)(-x), _ => throw Lexer.Error(u.Line, $"cannot negate a {Py.TypeName(operand)}") },
                    _ => operand,
                };
            case Expr.Binary b: return EvalBinary(b);
            case Expr.Conditional c:
                return Py.Truthy(Eval(c.Condition)) ? Eval(c.Then) : c.Else is null ? new Undefined("else") : Eval(c.Else);
            default: throw Lexer.Error(e.Line, $"unknown expression {e.GetType().Name}");
        }
    }

    private object? EvalOpt(Expr? e) => e is null ? null : Eval(e);

    private static string Describe(Expr e) => e switch
    {
        Expr.Name n => $"'{n.Id}'",
        Expr.Attribute a => $"'{a.Attr}'",
        _ => "the called value",
    };

    private object? EvalBinary(Expr.Binary b)
    {
        if (b.Op == "and") { var l = Eval(b.Left); return Py.Truthy(l) ? Eval(b.Right) : l; }
        if (b.Op == "or") { var l = Eval(b.Left); return Py.Truthy(l) ? l : Eval(b.Right); }
        return Operators.Apply(b.Op, Eval(b.Left), Eval(b.Right), b.Line);
    }
}
