namespace TpLlm.Server;

/// <summary>A request the server refuses, with the HTTP status and the OpenAI-style error fields.</summary>
public sealed class ApiException : Exception
{
    /// <summary>HTTP status (400 for bad requests).</summary>
    public int Status { get; }

    /// <summary>The request field at fault, or null.</summary>
    public string? Param { get; }

    /// <summary>OpenAI error type, e.g. invalid_request_error.</summary>
    public string Type { get; }

    /// <summary>OpenAI error code, e.g. model_not_found, or null.</summary>
    public string? Code { get; }

    /// <summary>Creates the error.</summary>
    public ApiException(int status, string message, string? param = null, string type = "invalid_request_error", string? code = null) : base(message)
    {
        Status = status; Param = param; Type = type; Code = code;
    }

    /// <summary>A 400 naming <paramref name="param"/>.</summary>
    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code: code);
}
