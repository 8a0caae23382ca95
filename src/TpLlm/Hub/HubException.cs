namespace TpLlm.Hub;

/// <summary>A model id that cannot be resolved: unknown, gated, offline and not cached, or a failed download.</summary>
public sealed class HubException(string message, Exception? inner = null) : TpLlmException(message, inner);
