namespace TpLlm.Tokenization;

/// <summary>A tokenizer file is missing, malformed or of an unsupported kind.</summary>
public sealed class TokenizerException : TpLlmException
{
    /// <summary>Creates the exception.</summary>
    public TokenizerException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public TokenizerException(string message, Exception? inner) : base(message, inner) { }
}
