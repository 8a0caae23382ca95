using TpLlm.Parallel;
using TpLlm.Sampling;

namespace TpLlm.Models;

/// <summary>
/// Perplexity of a text as llama.cpp's <c>llama-perplexity</c> computes it: the tokens are cut into non-overlapping
/// windows of <c>context</c> tokens (a partial last window is dropped), each window runs from an empty cache, and only
/// its second half is scored — position j in [context/2, context − 1) predicting token j + 1 — so every scored token
/// has at least half a window before it. Log-probabilities come from the column-parallel head, each rank reducing its
/// slice of the vocabulary (<see cref="VocabParallelSampler.Logprobs"/>): the logits are never gathered. Every rank
/// calls <see cref="Evaluate"/> with the same tokens (it is a collective).
/// </summary>
public static class Perplexity
{
    /// <summary>The result: exp(mean NLL), the tokens scored and their mean negative log-likelihood (nats).</summary>
    public readonly record struct Result(double Value, int Tokens, double MeanNll);

    /// <summary>
    /// Scores <paramref name="tokens"/> in windows of <paramref name="context"/>; with <paramref name="bos"/> ≥ 0 the
    /// first token of every window is replaced by it (llama.cpp does so for models whose tokenizer adds one).
    /// <paramref name="progress"/>(window, windows, running perplexity) is called after each window.
    /// </summary>
    public static Result Evaluate(DecoderModel model, int samplableVocab, ReadOnlySpan<int> tokens, int context, int bos = -1,
        Action<int, int, double>? progress = null)
    {
        if (model.Head is not IVocabParallelHead head)
            throw new InvalidRequestException("head", "perplexity is computed through the column-parallel LM head ({field} RowParallel cannot)");
        if (context < 4) throw new InvalidRequestException("context", $"{{field}} {context} must be ≥ 4");
        if (context > model.MaxContext) throw new InvalidRequestException("context", $"{{field}} {context} exceeds the context of {model.MaxContext} tokens the model was loaded with");
        int windows = tokens.Length / context;
        if (windows == 0) throw new InvalidRequestException("context", $"the text has {tokens.Length} tokens, fewer than one window of {{field}} {context}");
        int H = model.Config.HiddenSize, first = context / 2, scored = context - 1 - first;
        var sampler = new VocabParallelSampler(model.Comm, head.Partition, samplableVocab);
        var scorer = new PromptScorer(head, sampler, H);
        var hidden = new float[context * H];
        var window = new int[context];
        double nll = 0;
        int count = 0;
        for (int w = 0; w < windows; w++)
        {
            tokens.Slice(w * context, context).CopyTo(window);
            if (bos >= 0) window[0] = bos;
            model.Forward(window, [new SequenceChunk(0, 0, context)], hidden, allPositions: true);
            model.Cache.SetLength(0, 0);
            // positions first .. context − 2 predict tokens first + 1 .. context − 1
            var lps = scorer.Score(hidden.AsSpan(first * H, (scored + 1) * H), window.AsSpan(first, scored + 1), 0);
            for (int i = 1; i <= scored; i++) nll -= lps[i]!.Logprob;
            count += scored;
            progress?.Invoke(w + 1, windows, Math.Exp(nll / count));
        }
        return new Result(Math.Exp(nll / count), count, nll / count);
    }
}
