namespace TpLlm.Checkpoints;

/// <summary>
/// A model's tensors under their Hugging Face names (<c>model.layers.0.self_attn.q_proj.weight</c>), whatever file
/// format holds them: a safetensors folder (<see cref="Checkpoint"/>) or a GGUF file (<see cref="Gguf.GgufCheckpoint"/>).
/// The loader reads only through this seam. Safe to share between in-process ranks.
/// </summary>
public interface IWeightSource : IDisposable
{
    /// <summary>The folder or file, for messages.</summary>
    string Location { get; }

    /// <summary>Every tensor's name.</summary>
    IEnumerable<string> TensorNames { get; }

    /// <summary>True when a tensor of exactly this name exists.</summary>
    bool Contains(string name);

    /// <summary>The tensor named exactly <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointException">No such tensor, its file is missing or malformed, or its type cannot be read.</exception>
    SourceTensor Tensor(string name);
}
