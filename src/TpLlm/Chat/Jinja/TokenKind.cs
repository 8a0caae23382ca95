namespace TpLlm.Chat.Jinja;

/// <summary>Kinds of template tokens.</summary>
internal enum TokenKind
{
    Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End,
}
