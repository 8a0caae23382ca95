namespace TpLlm.Chat;

/// <summary>A chat template that cannot be parsed or rendered, or that refused the conversation (<c>raise_exception</c>).</summary>
public sealed class ChatTemplateException : TpLlmException
{
    /// <summary>Creates the exception.</summary>
    public ChatTemplateException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public ChatTemplateException(string message, Exception? inner) : base(message, inner) { }
}
