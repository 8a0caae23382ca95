using TpLlm.Models;

namespace TpLlm.Serving;

/// <summary>What <see cref="InferenceEngine.StartAsync"/> loads and how.</summary>
public sealed record EngineOptions
{
    /// <summary>Hugging Face model folder (config.json, safetensors, tokenizer.json).</summary>
    public required string ModelPath { get; init; }

    /// <summary>Tensor-parallel ranks (threads).</summary>
    public int Tp { get; init; } = 1;

    /// <summary>Sequences that run at once.</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>Model options (context, quantization, threads).</summary>
    public ModelOptions? Model { get; init; }

    /// <summary>The name clients use; default: the folder's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Automatic prefix caching (<see cref="ContinuousBatcher.PrefixCaching"/>); on by default.</summary>
    public bool PrefixCaching { get; init; } = true;

    /// <summary>Chunked prefill: prompt tokens prefilled per step (<see cref="ContinuousBatcher.MaxPrefillTokens"/>; 0 = whole prompts).</summary>
    public int MaxPrefillTokens { get; init; } = ContinuousBatcher.DefaultMaxPrefillTokens;

    /// <summary>A Jinja chat template file to use instead of the model's.</summary>
    public string? ChatTemplatePath { get; init; }
}
