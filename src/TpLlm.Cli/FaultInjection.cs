using TpLlm.Checkpoints;
using TpLlm.Distributed;

namespace TpLlm.Cli;

/// <summary>
/// A test hook for the failure semantics, around the model rather than in it: <c>TPLLM_INJECT_FAULT=rank:site</c> makes
/// that rank fail at <c>load</c> (a tensor missing for that rank only: <see cref="FaultInjectingWeightSource"/>),
/// <c>kernel</c> (an exception instead of its first all-reduce, while the others wait in it) or <c>collective</c> (an
/// all-reduce of a size the others do not use): <see cref="FaultInjectingCommunicator"/>. Unset in normal use.
/// </summary>
public static class FaultInjection
{
    private static readonly (int Rank, string Site)? Fault = Parse(Environment.GetEnvironmentVariable("TPLLM_INJECT_FAULT"));

    private static (int, string)? Parse(string? s)
    {
        var parts = s?.Split(':');
        return parts is [var r, var site] && int.TryParse(r, out int rank) ? (rank, site) : null;
    }

    /// <summary><paramref name="comm"/>, wrapped to fail when a kernel or collective fault is set for its rank.</summary>
    public static ICommunicator Wrap(ICommunicator comm) =>
        Fault is { Site: "kernel" or "collective" } f && f.Rank == comm.Rank ? new FaultInjectingCommunicator(comm, f.Site == "kernel") : comm;

    /// <summary><paramref name="source"/>, wrapped to lack a tensor on <paramref name="rank"/> when a load fault is set for it.</summary>
    public static IWeightSource Wrap(IWeightSource source, int rank) =>
        Fault is { Site: "load" } f && f.Rank == rank ? new FaultInjectingWeightSource(source, "model.layers.0.self_attn.q_proj.weight", $"for rank {rank} (injected fault)") : source;
}
