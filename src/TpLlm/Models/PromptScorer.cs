using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>
/// Log-probabilities of each prompt token given the tokens before it (vLLM's <c>prompt_logprobs</c>,
/// OpenAI's <c>echo</c> with <c>logprobs</c>), from the final hidden state of every prompt position:
/// the column-parallel head runs over <see cref="Block"/> positions at a time and
/// <see cref="VocabParallelSampler.Logprobs"/> reduces each rank's slice, so the vocabulary is never
/// gathered. Every rank calls <see cref="Score"/> for the same sequences in the same order (it is a collective).
/// </summary>
public sealed class PromptScorer(IVocabParallelHead head, VocabParallelSampler sampler, int hiddenSize)
{
    /// <summary>Positions per pass of the head: <c>[Block, V_pad/tp]</c> logits at a time.</summary>
    public const int Block = 32;

    private float[] _local = [];

    /// <summary>
    /// Scores <paramref name="prompt"/> from <paramref name="hidden"/> <c>[prompt.Length, H]</c>; entry 0 is null
    /// (nothing comes before the first token), entry i is log p(prompt[i] | prompt[..i]) with the
    /// <paramref name="topN"/> most likely alternatives and its rank.
    /// </summary>
    public TokenLogprobs?[] Score(ReadOnlySpan<float> hidden, ReadOnlySpan<int> prompt, int topN)
    {
        int H = hiddenSize, shard = head.Partition.ShardSize;
        var result = new TokenLogprobs?[prompt.Length];
        if (_local.Length < Block * shard) _local = new float[Block * shard];
        for (int p0 = 0; p0 < prompt.Length - 1; p0 += Block)
        {
            int nb = Math.Min(Block, prompt.Length - 1 - p0);
            head.ForwardLocal(hidden.Slice(p0 * H, nb * H), nb, _local); // position p predicts token p + 1
            var lps = sampler.Logprobs(_local, nb, prompt.Slice(p0 + 1, nb), topN, rank: true);
            for (int i = 0; i < nb; i++) result[p0 + 1 + i] = lps[i];
        }
        return result;
    }
}
