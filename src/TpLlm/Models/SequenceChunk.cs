namespace TpLlm.Models;

/// <summary>A run of consecutive tokens of one sequence in a forward step.</summary>
/// <param name="Slot">KV-cache slot of the sequence.</param>
/// <param name="Start">Position of the first token (tokens before it are cached).</param>
/// <param name="Length">Number of tokens in this step.</param>
public readonly record struct SequenceChunk(int Slot, int Start, int Length);
