namespace TpLlm.Models;

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason
{
    /// <summary>It produced an end-of-sequence token.</summary>
    Eos,
    /// <summary>It reached its max new tokens.</summary>
    MaxTokens,
    /// <summary>It filled the model's context (max_position_embeddings or the configured context).</summary>
    ContextFull,
    /// <summary>Generation was cancelled.</summary>
    Cancelled,
}
