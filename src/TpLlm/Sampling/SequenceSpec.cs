namespace TpLlm.Sampling;

/// <summary>What the logits processors and the sampler learn of a sequence when it starts.</summary>
/// <param name="Prompt">The prompt's token ids.</param>
/// <param name="Sampling">How it samples: penalties, logit bias, minimum length, seed, filters.</param>
/// <param name="StopTokenIds">Ids that end it besides end-of-sequence.</param>
/// <param name="IgnoreEos">End-of-sequence ids do not end it.</param>
/// <param name="ResponseFormat">Text, or one JSON object.</param>
public sealed record SequenceSpec(int[] Prompt, SamplingParams Sampling, IReadOnlyList<int> StopTokenIds, bool IgnoreEos = false,
    ResponseFormat ResponseFormat = ResponseFormat.Text);
