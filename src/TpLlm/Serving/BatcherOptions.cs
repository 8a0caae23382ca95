using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;

namespace TpLlm.Serving;

/// <summary>How <see cref="ContinuousBatcher"/> batches, and how its ranks load the model: every knob of the batch in one place.</summary>
public record BatcherOptions
{
    /// <summary>The default of <see cref="MaxPrefillTokens"/>.</summary>
    public const int DefaultMaxPrefillTokens = 64;

    /// <summary>Sequences that run at once (vLLM's <c>max_num_seqs</c>): the KV cache holds this many slots.</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>
    /// How each rank loads the model (context, quantization, threads). Its <see cref="ModelOptions.MaxSequences"/> is the
    /// batch's: left at 1 it becomes <see cref="MaxBatch"/>, and another value must equal it; the head must be
    /// column-parallel, as the batch samples each rank's vocabulary slice.
    /// </summary>
    public ModelOptions? Model { get; init; }

    /// <summary>
    /// Automatic prefix caching (on by default, as in vLLM): a new request takes the free slot whose cached tokens share the
    /// longest prefix with its prompt, or copies it from another slot, and only the rest of the prompt is prefilled. A
    /// finished sequence's keys and values stay in its slot until another sequence overwrites them.
    /// </summary>
    public bool PrefixCaching { get; init; } = true;

    /// <summary>
    /// Chunked prefill (vLLM's <c>max_num_batched_tokens</c>): at most this many prompt tokens are prefilled per step, so a
    /// long prompt is prefilled over several steps while the running sequences keep decoding between them; 0 = whole prompts
    /// at once. A prompt whose log-probabilities are asked for is prefilled whole.
    /// </summary>
    public int MaxPrefillTokens { get; init; } = DefaultMaxPrefillTokens;

    /// <summary>
    /// How long a rank waits for the others in a collective, and the batch for its ranks to stop; null = <see cref="ThreadRanks.ConfiguredTimeout"/>
    /// (<c>TPLLM_COLLECTIVE_TIMEOUT</c>, or two minutes).
    /// </summary>
    public TimeSpan? CollectiveTimeout { get; init; }

    /// <summary>
    /// The model options the batch's ranks load with, after checking that they agree with the batch; an
    /// <see cref="InvalidRequestException"/> names the option at fault (<c>max_batch</c>, <c>max_prefill_tokens</c>, <c>head</c>),
    /// which the CLI words as its flag.
    /// </summary>
    public ModelOptions ModelOptionsForBatch()
    {
        if (MaxBatch < 1) throw new InvalidRequestException("max_batch", $"{{field}} {MaxBatch} must be ≥ 1");
        CheckMaxPrefillTokens(MaxPrefillTokens);
        var model = Model ?? new ModelOptions();
        if (model.MaxSequences != 1 && model.MaxSequences != MaxBatch)
            throw new InvalidRequestException("max_batch", $"the model options ask for {model.MaxSequences} sequences at once but {{field}} is {MaxBatch}; leave the number of sequences to the batch");
        if (model.HeadStrategy != LmHeadStrategy.ColumnParallel)
            throw new InvalidRequestException("head", $"{{field}} {model.HeadStrategy}: the batch samples each rank's vocabulary slice, which needs the ColumnParallel head");
        return model with { MaxSequences = MaxBatch };
    }

    /// <summary>The timeout in effect: <see cref="CollectiveTimeout"/> or the configured one.</summary>
    public TimeSpan Timeout => CollectiveTimeout ?? ThreadRanks.ConfiguredTimeout;

    internal static int CheckMaxPrefillTokens(int value) =>
        value >= 0 ? value : throw new InvalidRequestException("max_prefill_tokens", $"{{field}} {value} must be ≥ 0 (0 = whole prompts)");
}
