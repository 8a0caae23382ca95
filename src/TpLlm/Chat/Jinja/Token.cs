namespace TpLlm.Chat.Jinja;

/// <summary>One token: literal text between tags, a tag delimiter, or a piece of an expression.</summary>
internal readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public override string ToString() => Kind switch { TokenKind.End => "end of template", TokenKind.String => $"'{Value}'", _ => $"'{Value}'" };
}
