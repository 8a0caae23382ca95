namespace TpLlm;

/// <summary>
/// The one exception family TpLlm throws for bad input (files, options, token ids) and for
/// failures that end a tensor-parallel group. Messages name the file, tensor or option and
/// the numbers involved.
/// </summary>
public class TpLlmException : Exception
{
    /// <summary>Creates an exception with a message.</summary>
    public TpLlmException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and the exception that caused it.</summary>
    public TpLlmException(string message, Exception? inner) : base(message, inner) { }
}
