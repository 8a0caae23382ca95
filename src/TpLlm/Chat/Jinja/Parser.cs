using System.Globalization;

namespace TpLlm.Chat.Jinja;

/// <summary>Recursive-descent parser for the template tokens, with Jinja's operator precedence.</summary>
internal sealed class Parser
{
    private const int MaxDepth = 200;
    private readonly List<Token> _t;
    private int _p;
    private int _depth;

    private Parser(List<Token> tokens) => _t = tokens;

    public static Stmt[] Parse(string source)
    {
        var parser = new Parser(Lexer.Tokenize(source));
        var body = parser.ParseBody(out var end);
        if (end is not null) throw Lexer.Error(parser.Peek.Line, $"'{{% {end} %}}' without a matching opening tag");
        return body;
    }

    private Token Peek => _t[_p];
    private Token PeekAt(int k) => _t[Math.Min(_p + k, _t.Count - 1)];
    private Token Next() => _t[_p++];

    private Token Expect(TokenKind kind, string? value = null)
    {
        var tok = Next();
        if (tok.Kind != kind || (value is not null && tok.Value != value))
            throw Lexer.Error(tok.Line, $"expected {(value is null ? kind.ToString() : $"'{value}'")}, found {tok}");
        return tok;
    }

    private bool Accept(TokenKind kind, string value)
    {
        if (!Peek.Is(kind, value)) return false;
        _p++;
        return true;
    }

    // Parses statements until end of input or a block tag it does not own (elif, else, endfor, …): that tag's name comes back in 'end'
    private Stmt[] ParseBody(out string? end, params string[] enders)
    {
        using var _ = Enter();
        var body = new List<Stmt>();
        while (true)
        {
            var tok = Peek;
            switch (tok.Kind)
            {
                case TokenKind.End:
                    end = null;
                    if (enders.Length > 0) throw Lexer.Error(tok.Line, $"missing '{{% {enders[^1]} %}}'");
                    return [.. body];
                case TokenKind.Text:
                    _p++;
                    body.Add(new Stmt.Text(tok.Value, tok.Line));
                    break;
                case TokenKind.VariableBegin:
                    _p++;
                    body.Add(new Stmt.Output(ParseExpression(), tok.Line));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    var name = PeekAt(1);
                    if (name.Kind == TokenKind.Name && enders.Contains(name.Value))
                    {
                        _p += 2;
                        end = name.Value;
                        return [.. body];
                    }
                    _p++;
                    body.Add(ParseStatement());
                    break;
                default:
                    throw Lexer.Error(tok.Line, $"unexpected {tok}");
            }
        }
    }

    private Stmt ParseStatement()
    {
        var tok = Expect(TokenKind.Name);
        switch (tok.Value)
        {
            case "if": return ParseIf(tok.Line);
            case "for": return ParseFor(tok.Line);
            case "set": return ParseSet(tok.Line);
            case "macro": return ParseMacro(tok.Line);
            case "break": Expect(TokenKind.BlockEnd); return new Stmt.Break(tok.Line);
            case "continue": Expect(TokenKind.BlockEnd); return new Stmt.Continue(tok.Line);
            case "generation": // transformers' marker for assistant masks: render the body as is
                Expect(TokenKind.BlockEnd);
                var body = ParseBody(out _, "endgeneration");
                Expect(TokenKind.BlockEnd);
                return new Stmt.If([(new Expr.Literal(true, tok.Line), body)], [], tok.Line);
            default: throw Lexer.Error(tok.Line, $"unsupported tag '{tok.Value}' (supported: if, for, set, macro, break, continue, generation)");
        }
    }

    private Stmt ParseIf(int line)
    {
        var branches = new List<(Expr, Stmt[])>();
        var cond = ParseExpression();
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = ParseBody(out var end, "elif", "else", "endif");
            branches.Add((cond, body));
            if (end == "elif") { cond = ParseExpression(); Expect(TokenKind.BlockEnd); continue; }
            Expect(TokenKind.BlockEnd);
            if (end == "endif") return new Stmt.If([.. branches], [], line);
            var elseBody = ParseBody(out _, "endif");
            Expect(TokenKind.BlockEnd);
            return new Stmt.If([.. branches], elseBody, line);
        }
    }

    private Stmt ParseFor(int line)
    {
        var targets = new List<string> { Expect(TokenKind.Name).Value };
        while (Accept(TokenKind.Operator, ",")) targets.Add(Expect(TokenKind.Name).Value);
        Expect(TokenKind.Name, "in");
        var items = ParseOr(); // not a conditional: a trailing 'if' filters the loop
        Expr? filter = Accept(TokenKind.Name, "if") ? ParseOr() : null;
        if (Accept(TokenKind.Name, "recursive")) throw Lexer.Error(line, "recursive loops are not supported");
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(out var end, "else", "endfor");
        Expect(TokenKind.BlockEnd);
        Stmt[] elseBody = [];
        if (end == "else") { elseBody = ParseBody(out _, "endfor"); Expect(TokenKind.BlockEnd); }
        return new Stmt.For([.. targets], items, filter, body, elseBody, line);
    }

    private Stmt ParseSet(int line)
    {
        var targets = new List<string> { Expect(TokenKind.Name).Value };
        string? attr = null;
        if (Accept(TokenKind.Operator, ".")) attr = Expect(TokenKind.Name).Value;
        else while (Accept(TokenKind.Operator, ",")) targets.Add(Expect(TokenKind.Name).Value);
        if (Peek.Kind == TokenKind.BlockEnd && attr is null && targets.Count == 1)
        {
            _p++;
            var body = ParseBody(out _, "endset");
            Expect(TokenKind.BlockEnd);
            return new Stmt.SetBlock(targets[0], body, line);
        }
        Expect(TokenKind.Operator, "=");
        var value = ParseExpression();
        Expect(TokenKind.BlockEnd);
        return new Stmt.Set([.. targets], attr, value, line);
    }

    private Stmt ParseMacro(int line)
    {
        var name = Expect(TokenKind.Name).Value;
        Expect(TokenKind.Operator, "(");
        var ps = new List<string>();
        var defaults = new List<Expr?>();
        while (!Accept(TokenKind.Operator, ")"))
        {
            if (ps.Count > 0) Expect(TokenKind.Operator, ",");
            ps.Add(Expect(TokenKind.Name).Value);
            defaults.Add(Accept(TokenKind.Operator, "=") ? ParseExpression() : null);
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(out _, "endmacro");
        Expect(TokenKind.BlockEnd);
        return new Stmt.Macro(name, [.. ps], [.. defaults], body, line);
    }

    // nesting deeper than MaxDepth is refused rather than risking the stack
    private DepthGuard Enter()
    {
        if (++_depth > MaxDepth) throw Lexer.Error(Peek.Line, $"nesting deeper than {MaxDepth} levels");
        return new DepthGuard(this);
    }

    private readonly struct DepthGuard(Parser parser) : IDisposable
    {
        public void Dispose() => parser._depth--;
    }

    // ---- expressions, lowest precedence first ----

    private Expr ParseExpression()
    {
        var e = ParseOr();
        while (Peek.Is(TokenKind.Name, "if"))
        {
            int line = Next().Line;
            var cond = ParseOr();
            Expr? otherwise = Accept(TokenKind.Name, "else") ? ParseExpression() : null;
            e = new Expr.Conditional(e, cond, otherwise, line);
        }
        return e;
    }

    private Expr ParseOr()
    {
        var e = ParseAnd();
        while (Peek.Is(TokenKind.Name, "or")) { int l = Next().Line; e = new Expr.Binary("or", e, ParseAnd(), l); }
        return e;
    }

    private Expr ParseAnd()
    {
        var e = ParseNot();
        while (Peek.Is(TokenKind.Name, "and")) { int l = Next().Line; e = new Expr.Binary("and", e, ParseNot(), l); }
        return e;
    }

    private Expr ParseNot()
    {
        if (Peek.Is(TokenKind.Name, "not")) { int l = Next().Line; return new Expr.Unary("not", ParseNot(), l); }
        return ParseCompare();
    }

    private static readonly string[] CompareOps = ["==", "!=", "<", ">", "<=", ">="];

    private Expr ParseCompare()
    {
        var e = ParseMath1();
        while (true)
        {
            var tok = Peek;
            if (tok.Kind == TokenKind.Operator && CompareOps.Contains(tok.Value)) { _p++; e = new Expr.Binary(tok.Value, e, ParseMath1(), tok.Line); }
            else if (tok.Is(TokenKind.Name, "in")) { _p++; e = new Expr.Binary("in", e, ParseMath1(), tok.Line); }
            else if (tok.Is(TokenKind.Name, "not") && PeekAt(1).Is(TokenKind.Name, "in")) { _p += 2; e = new Expr.Binary("not in", e, ParseMath1(), tok.Line); }
            else return e;
        }
    }

    private Expr ParseMath1()
    {
        var e = ParseConcat();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "+" or "-") { var t = Next(); e = new Expr.Binary(t.Value, e, ParseConcat(), t.Line); }
        return e;
    }

    private Expr ParseConcat()
    {
        var e = ParseMath2();
        while (Peek.Is(TokenKind.Operator, "~")) { var t = Next(); e = new Expr.Binary("~", e, ParseMath2(), t.Line); }
        return e;
    }

    private Expr ParseMath2()
    {
        var e = ParsePow();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "*" or "/" or "//" or "%") { var t = Next(); e = new Expr.Binary(t.Value, e, ParsePow(), t.Line); }
        return e;
    }

    private Expr ParsePow()
    {
        var e = ParseUnary();
        while (Peek.Is(TokenKind.Operator, "**")) { var t = Next(); e = new Expr.Binary("**", e, ParseUnary(), t.Line); }
        return e;
    }

    private Expr ParseUnary()
    {
        using var _ = Enter();
        if (Peek.Kind == TokenKind.Operator && Peek.Value is "-" or "+") { var t = Next(); return new Expr.Unary(t.Value, ParseUnary(), t.Line); }
        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    private Expr ParsePrimary()
    {
        var tok = Next();
        switch (tok.Kind)
        {
            case TokenKind.String:
                var s = tok.Value;
                while (Peek.Kind == TokenKind.String) s += Next().Value; // adjacent literals concatenate
                return new Expr.Literal(s, tok.Line);
            case TokenKind.Integer: // Python ints are unbounded; past Int64 they become floats here
                return new Expr.Literal(long.TryParse(tok.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long l) ? (object)l : double.Parse(tok.Value, CultureInfo.InvariantCulture), tok.Line);
            case TokenKind.Float: return new Expr.Literal(double.Parse(tok.Value, CultureInfo.InvariantCulture), tok.Line);
            case TokenKind.Name:
                return tok.Value switch
                {
                    "true" or "True" => new Expr.Literal(true, tok.Line),
                    "false" or "False" => new Expr.Literal(false, tok.Line),
                    "none" or "None" => new Expr.Literal(null, tok.Line),
                    _ => new Expr.Name(tok.Value, tok.Line),
                };
            case TokenKind.Operator when tok.Value == "(":
                if (Accept(TokenKind.Operator, ")")) return new Expr.ListExpr([], tok.Line);
                var first = ParseExpression();
                if (Accept(TokenKind.Operator, ")")) return first;
                var items = new List<Expr> { first };
                while (Accept(TokenKind.Operator, ",") && !Peek.Is(TokenKind.Operator, ")")) items.Add(ParseExpression());
                Expect(TokenKind.Operator, ")");
                return new Expr.ListExpr([.. items], tok.Line);
            case TokenKind.Operator when tok.Value == "[":
                var list = new List<Expr>();
                while (!Accept(TokenKind.Operator, "]"))
                {
                    if (list.Count > 0) { Expect(TokenKind.Operator, ","); if (Accept(TokenKind.Operator, "]")) break; }
                    list.Add(ParseExpression());
                }
                return new Expr.ListExpr([.. list], tok.Line);
            case TokenKind.Operator when tok.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!Accept(TokenKind.Operator, "}"))
                {
                    if (pairs.Count > 0) { Expect(TokenKind.Operator, ","); if (Accept(TokenKind.Operator, "}")) break; }
                    var key = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    pairs.Add((key, ParseExpression()));
                }
                return new Expr.DictExpr([.. pairs], tok.Line);
            default:
                throw Lexer.Error(tok.Line, $"unexpected {tok} in an expression");
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            var tok = Peek;
            if (tok.Is(TokenKind.Operator, "."))
            {
                _p++;
                var name = Next();
                if (name.Kind is not (TokenKind.Name or TokenKind.Integer)) throw Lexer.Error(name.Line, $"expected an attribute name after '.', found {name}");
                e = name.Kind == TokenKind.Integer ? new Expr.Index(e, new Expr.Literal(long.TryParse(name.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long ix) ? ix : -1L, name.Line), name.Line)
                    : new Expr.Attribute(e, name.Value, name.Line);
            }
            else if (tok.Is(TokenKind.Operator, "["))
            {
                _p++;
                e = ParseSubscript(e, tok.Line);
            }
            else if (tok.Is(TokenKind.Operator, "("))
            {
                _p++;
                var (args, kwargs) = ParseArgs();
                e = new Expr.Call(e, args, kwargs, tok.Line);
            }
            else return e;
        }
    }

    private Expr ParseSubscript(Expr target, int line)
    {
        Expr? start = null, stop = null, step = null;
        if (!Peek.Is(TokenKind.Operator, ":")) start = ParseExpression();
        if (Accept(TokenKind.Operator, "]"))
            return new Expr.Index(target, start ?? throw Lexer.Error(line, "empty subscript []"), line);
        Expect(TokenKind.Operator, ":");
        if (!Peek.Is(TokenKind.Operator, ":") && !Peek.Is(TokenKind.Operator, "]")) stop = ParseExpression();
        if (Accept(TokenKind.Operator, ":") && !Peek.Is(TokenKind.Operator, "]")) step = ParseExpression();
        Expect(TokenKind.Operator, "]");
        return new Expr.Slice(target, start, stop, step, line);
    }

    // after '(' : positional and keyword arguments up to ')'
    private (Expr[], (string, Expr)[]) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Accept(TokenKind.Operator, ")"))
        {
            if (args.Count + kwargs.Count > 0) { Expect(TokenKind.Operator, ","); if (Accept(TokenKind.Operator, ")")) break; }
            if (Peek.Kind == TokenKind.Name && PeekAt(1).Is(TokenKind.Operator, "="))
            {
                var name = Next().Value;
                _p++;
                kwargs.Add((name, ParseExpression()));
            }
            else args.Add(ParseExpression());
        }
        return ([.. args], [.. kwargs]);
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            var tok = Peek;
            if (tok.Is(TokenKind.Operator, "|"))
            {
                _p++;
                var name = Expect(TokenKind.Name).Value;
                Expr[] args = [];
                (string, Expr)[] kwargs = [];
                if (Accept(TokenKind.Operator, "(")) (args, kwargs) = ParseArgs();
                e = new Expr.Filter(e, name, args, kwargs, tok.Line);
            }
            else if (tok.Is(TokenKind.Name, "is"))
            {
                _p++;
                bool negated = Accept(TokenKind.Name, "not");
                var nameTok = Next();
                string name = nameTok.Kind switch
                {
                    TokenKind.Name => nameTok.Value,
                    TokenKind.Operator when nameTok.Value is "==" or "!=" or "<" or ">" or "<=" or ">=" => nameTok.Value,
                    _ => throw Lexer.Error(nameTok.Line, $"expected a test name after 'is', found {nameTok}"),
                };
                var args = new List<Expr>();
                if (Accept(TokenKind.Operator, "(")) args.AddRange(ParseArgs().Item1);
                else if (IsTestArgumentStart(Peek)) args.Add(ParsePostfix(ParsePrimary()));
                e = new Expr.Test(e, name, [.. args], negated, tok.Line);
            }
            else return e;
        }
    }

    // 'x is divisibleby 3', 'x is equalto "a"': a bare argument follows the test name
    private static bool IsTestArgumentStart(Token t) =>
        t.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float ||
        (t.Kind == TokenKind.Name && t.Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is"));
}
