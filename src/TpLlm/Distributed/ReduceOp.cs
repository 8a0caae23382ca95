namespace TpLlm.Distributed;

/// <summary>Element-wise reduction of an all-reduce.</summary>
public enum ReduceOp
{
    /// <summary>Sum.</summary>
    Sum,
    /// <summary>Maximum.</summary>
    Max,
}
