namespace TpLlm.Distributed;

/// <summary>A collective waited longer than the group's timeout for the other ranks.</summary>
public sealed class CollectiveTimeoutException : TpLlmException
{
    /// <summary>Creates the exception.</summary>
    public CollectiveTimeoutException(string message) : base(message) { }
}
