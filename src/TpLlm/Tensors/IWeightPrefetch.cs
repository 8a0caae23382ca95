namespace TpLlm.Tensors;

/// <summary>
/// What a register tile does ahead of each weight line it reads. A type parameter rather than a flag, so the JIT
/// compiles each tile once per policy and a tile that finds its weights in cache carries no prefetch instructions
/// in its loop (a prefetch and its address per weight line: four µops per column pair of two panels, which a core
/// shared with another thread has to decode).
/// </summary>
internal unsafe interface IWeightPrefetch
{
    /// <summary>Called with the weight line about to be read, <c>line + offset</c> (offset in bytes, a constant
    /// after inlining, so that it folds into one address with the distance ahead).</summary>
    static abstract void Ahead(byte* line, int offset);
}
