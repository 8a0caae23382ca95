namespace TpLlm.Serving;

/// <summary>What <see cref="InferenceEngine.StartAsync"/> loads and how; the batch's knobs are <see cref="BatcherOptions"/>'.</summary>
public sealed record EngineOptions : BatcherOptions
{
    /// <summary>Hugging Face model folder (config.json, safetensors, tokenizer.json), or a GGUF file.</summary>
    public required string ModelPath { get; init; }

    /// <summary>Tensor-parallel ranks (threads).</summary>
    public int Tp { get; init; } = 1;

    /// <summary>The name clients use; default: the folder's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>A Jinja chat template file to use instead of the model's.</summary>
    public string? ChatTemplatePath { get; init; }
}
