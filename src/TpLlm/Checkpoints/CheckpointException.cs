namespace TpLlm.Checkpoints;

/// <summary>A checkpoint file or folder is malformed, inconsistent or incomplete.</summary>
public sealed class CheckpointException : TpLlmException
{
    /// <summary>Creates the exception; the message should name the file and tensor.</summary>
    public CheckpointException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public CheckpointException(string message, Exception? inner) : base(message, inner) { }
}
