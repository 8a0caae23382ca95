namespace TpLlm.Checkpoints.Gptq;

/// <summary>
/// A GPTQ checkpoint's tensors under the names of the model they quantize: a module's <c>qweight</c>, <c>scales</c>,
/// <c>qzeros</c> (and <c>g_idx</c>) read together as its <c>weight</c>, in GGUF's Q4_0 blocks, which the q4 format
/// keeps as they are; every other tensor (embeddings, norms, the LM head) as the folder holds it.
/// </summary>
public sealed class GptqCheckpoint : IWeightSource
{
    private const string Weight = ".weight", QWeight = ".qweight";
    private static readonly string[] Parts = [".qweight", ".scales", ".qzeros", ".g_idx"];
    private readonly Checkpoint _inner;
    private readonly GptqConfig _config;

    /// <summary>Reads <paramref name="inner"/>'s GPTQ tensors as <paramref name="config"/> describes them.</summary>
    public GptqCheckpoint(Checkpoint inner, GptqConfig config)
    {
        _inner = inner;
        _config = config;
    }

    /// <summary>The quantization config.</summary>
    public GptqConfig Config => _config;

    /// <inheritdoc/>
    public string Location => _inner.Location;

    /// <inheritdoc/>
    public IEnumerable<string> TensorNames =>
        _inner.TensorNames.Select(n => n.EndsWith(QWeight, StringComparison.Ordinal) ? n[..^QWeight.Length] + Weight : n).Where(n => !IsPart(n));

    /// <inheritdoc/>
    public bool Contains(string name) => (_inner.Contains(name) && !IsPart(name)) || Quantized(name) is not null;

    // a qweight, scales, qzeros or g_idx of a quantized module: read through its weight, not listed itself
    private bool IsPart(string name) => Parts.Any(p => name.EndsWith(p, StringComparison.Ordinal) && _inner.Contains(name[..^p.Length] + QWeight));

    /// <inheritdoc/>
    public SourceTensor Tensor(string name)
    {
        if (Quantized(name) is not { } module) return _inner.Tensor(name);
        (SafetensorsFile, TensorInfo)? gIdx = _inner.Contains(module + ".g_idx") ? _inner.Get(module + ".g_idx") : null;
        return new GptqTensor(name, _inner.Get(module + QWeight), _inner.Get(module + ".scales"), _inner.Get(module + ".qzeros"), gIdx, _config);
    }

    // the module of a quantized weight's name (model.layers.0.mlp.down_proj for …down_proj.weight), else null
    private string? Quantized(string name) =>
        name.EndsWith(Weight, StringComparison.Ordinal) && !_inner.Contains(name) && _inner.Contains(name[..^Weight.Length] + QWeight)
            ? name[..^Weight.Length] : null;

    /// <inheritdoc/>
    public void Dispose() => _inner.Dispose();
}
