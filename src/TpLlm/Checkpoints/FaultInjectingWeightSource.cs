namespace TpLlm.Checkpoints;

/// <summary>
/// A weight source that lacks one tensor (for tests of a rank that fails while loading): asking for
/// <paramref name="missing"/> throws as a missing tensor does, with <paramref name="why"/> added. It does not own
/// <paramref name="inner"/>.
/// </summary>
public sealed class FaultInjectingWeightSource(IWeightSource inner, string missing, string why) : IWeightSource
{
    /// <inheritdoc/>
    public string Location => inner.Location;

    /// <inheritdoc/>
    public IEnumerable<string> TensorNames => inner.TensorNames.Where(n => n != missing);

    /// <inheritdoc/>
    public bool Contains(string name) => name != missing && inner.Contains(name);

    /// <inheritdoc/>
    public SourceTensor Tensor(string name) =>
        name == missing ? throw new CheckpointException($"{inner.Location}: tensor '{name}' not found {why}") : inner.Tensor(name);

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
