using System.Threading.Channels;

namespace TpLlm.Serving;

/// <summary>A running request: its text as it becomes final, and the whole result when it ends.</summary>
/// <param name="Deltas">Completed when generation ends (with the failure, if it failed).</param>
/// <param name="Result">The final result; throws what generation threw.</param>
public sealed record TextStream(ChannelReader<TextDelta> Deltas, Task<TextResult> Result);
