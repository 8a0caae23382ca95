namespace TpLlm.Models;

/// <summary>A model's config.json (or generation_config.json) is missing, malformed or unsupported.</summary>
public sealed class ModelConfigException : TpLlmException
{
    /// <summary>Creates the exception.</summary>
    public ModelConfigException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public ModelConfigException(string message, Exception? inner) : base(message, inner) { }
}
