namespace TpLlm.Distributed;

/// <summary>
/// A test hook for the failure semantics: <c>TPLLM_INJECT_FAULT=rank:site</c> makes that rank fail
/// at <c>load</c> (a tensor missing for that rank only), <c>kernel</c> (an exception in the first
/// decode step) or <c>collective</c> (a mismatched all-reduce size). Unset in normal use.
/// </summary>
public static class FaultInjection
{
    private static readonly (int Rank, string Site)? Fault = Parse(Environment.GetEnvironmentVariable("TPLLM_INJECT_FAULT"));

    private static (int, string)? Parse(string? s)
    {
        var parts = s?.Split(':');
        return parts is [var r, var site] && int.TryParse(r, out int rank) ? (rank, site) : null;
    }

    /// <summary>True when <paramref name="site"/> should fail on <paramref name="rank"/>.</summary>
    public static bool At(string site, int rank) => Fault is { } f && f.Site == site && f.Rank == rank;
}
