using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>A request in the batch, as the scheduler tracks it: where it is, what it has generated, and whom to tell.</summary>
internal sealed class BatchJob(GenerationRequest request, Action<int, TokenLogprobs?>? onToken, CancellationToken ct, Action<TokenLogprobs?[]>? onPrompt)
{
    public readonly GenerationRequest Request = request;
    public readonly Action<int, TokenLogprobs?>? OnToken = onToken;
    public readonly Action<TokenLogprobs?[]>? OnPrompt = onPrompt;
    public TokenLogprobs?[]? PromptLogprobs;
    public readonly CancellationToken Ct = ct;
    public readonly TaskCompletionSource<GenerationResult> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public readonly List<int> Tokens = new(Math.Clamp(request.MaxNewTokens, 1, 4096)); // grown by steps only past 4096
    public readonly List<TokenLogprobs>? Logprobs = request.WantLogprobs || request.TopLogprobs > 0 ? [] : null;
    public int Position; // tokens in the cache once the planned step has run
    public int Reused;   // prompt tokens whose keys and values were already in the slot (prefix caching)
    public readonly long Submitted = System.Diagnostics.Stopwatch.GetTimestamp();
    public long Admitted, FirstToken; // Stopwatch timestamps; 0 = not yet
}
