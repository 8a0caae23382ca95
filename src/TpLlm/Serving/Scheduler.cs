using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>
/// Rank 0's half of continuous batching, with no model: it queues requests, admits them to free KV-cache slots (prefix
/// caching: the slot, or another slot to copy from, holding the longest shared prefix), feeds prompts in chunks within a
/// per-step token budget (chunked prefill), plans each step (<see cref="StepPlan"/>), and takes back the step's tokens:
/// it delivers them, ends sequences (end-of-sequence, stop ids, max tokens, full context, cancellation) and frees their
/// slots. Every rank runs the plan (<see cref="StepExecutor"/>); only this scheduler knows the requests.
/// <see cref="Submit"/> may be called from any thread; everything else from the batch's thread.
/// </summary>
internal sealed class Scheduler
{
    private readonly ConcurrentQueue<BatchJob> _pending = new();
    private readonly BatchJob?[] _slots;
    private readonly List<int>[] _cachedTokens;    // per slot: the tokens whose keys and values the slot holds
    private readonly int[] _computed;              // per slot: positions with keys and values at the start of the step (-1: admitted in it)
    private readonly StepPlan _step = new();
    private List<BatchJob> _deferred = [], _deferredSpare = []; // requests waiting for a shared prompt prefix another slot is prefilling
    private readonly List<int> _free = [];
    private readonly HashSet<int> _eos;
    private readonly int _vocabSize;
    private readonly Action<GenerationRequest>? _validate;
    private int _context = int.MaxValue;
    private int _ringSlack = int.MaxValue;          // how far past a shared prefix a slot may be and still resume from it (sliding-window rings)
    private long _promptTokens, _generatedTokens, _prefixHits;
    private volatile bool _prefixCaching = true;
    private volatile int _maxPrefillTokens = BatcherOptions.DefaultMaxPrefillTokens;

    /// <summary>A request waits for another slot's prefill (then copies it) when they share at least this many prompt tokens.</summary>
    public const int MinSharedPrefix = 16;

    /// <summary>
    /// A scheduler of <paramref name="slots"/> KV-cache slots for a model of <paramref name="vocabSize"/> ids; each request
    /// is validated (<see cref="GenerationRequest.Validate"/>, then <paramref name="validate"/>, which throws a
    /// <see cref="TpLlmException"/> for what this model cannot do) and an invalid one fails alone.
    /// </summary>
    public Scheduler(int slots, int vocabSize, IEnumerable<int> eosIds, Action<GenerationRequest>? validate = null)
    {
        _vocabSize = vocabSize;
        _slots = new BatchJob?[slots];
        _cachedTokens = [.. Enumerable.Range(0, slots).Select(_ => new List<int>())];
        _computed = new int[slots];
        _eos = [.. eosIds];
        _validate = validate;
    }

    /// <summary>Sets what the loaded model allows: <paramref name="context"/> positions per sequence, and with sliding-window rings <paramref name="ringSlack"/>.</summary>
    public void Start(int context, int ringSlack = int.MaxValue)
    {
        _context = context;
        _ringSlack = ringSlack;
    }

    /// <summary>Automatic prefix caching (see <see cref="BatcherOptions.PrefixCaching"/>); affects requests admitted afterwards.</summary>
    public bool PrefixCaching { get => _prefixCaching; set => _prefixCaching = value; }

    /// <summary>Prompt tokens prefilled per step (see <see cref="BatcherOptions.MaxPrefillTokens"/>); affects the next step.</summary>
    public int MaxPrefillTokens
    {
        get => _maxPrefillTokens;
        set => _maxPrefillTokens = BatcherOptions.CheckMaxPrefillTokens(value);
    }

    /// <summary>Raised as each request ends; a handler's exception is ignored.</summary>
    public event Action<RequestStats>? RequestFinished;

    /// <summary>Sequences holding a slot (a snapshot).</summary>
    public int ActiveSequences => _slots.Count(j => j is not null);

    /// <summary>Requests submitted but not yet in the batch (a snapshot).</summary>
    public int WaitingRequests => _pending.Count + _deferred.Count;

    /// <summary>Prompt tokens of every request admitted so far.</summary>
    public long PromptTokensTotal => Interlocked.Read(ref _promptTokens);

    /// <summary>Tokens generated so far.</summary>
    public long GeneratedTokensTotal => Interlocked.Read(ref _generatedTokens);

    /// <summary>Prompt tokens that prefix caching spared from prefill.</summary>
    public long PrefixCacheHitTokensTotal => Interlocked.Read(ref _prefixHits);

    /// <summary>Queues a request (any thread).</summary>
    public void Submit(BatchJob job) => _pending.Enqueue(job);

    /// <summary>
    /// Plans the next step into <paramref name="wire"/> and returns its length, or 0 when there is nothing to run. Sequences
    /// that decode feed their last token, prompts being prefilled their next chunk, and queued requests are admitted to free
    /// slots while the step's prompt-token budget lasts.
    /// </summary>
    public int Plan(List<int> wire)
    {
        _step.Clear();
        Span<int> next = stackalloc int[1];
        var slots = _slots;
        int budget = MaxPrefillTokens > 0 ? MaxPrefillTokens : int.MaxValue;
        for (int s = 0; s < slots.Length; s++) _computed[s] = slots[s]?.Position ?? 0;
        for (int s = 0; s < slots.Length; s++)
        {
            var job = slots[s];
            if (job is null) continue;
            var prompt = job.Request.PromptIds;
            if (job.Position >= prompt.Length)
            {
                next[0] = job.Tokens[^1];
                _step.Continue(s, job.Position, next, samples: true);
                job.Position++;
                continue;
            }
            // a prompt still being prefilled, chunk by chunk
            if (job.Ct.IsCancellationRequested)
            {
                End(s, job, FinishReason.Cancelled, []);
                continue;
            }
            if (budget == 0) continue; // it waits for a later step
            int feed = Math.Min(budget, prompt.Length - job.Position);
            budget -= feed;
            _step.Continue(s, job.Position, prompt.AsSpan(job.Position, feed), samples: job.Position + feed == prompt.Length);
            job.Position += feed;
        }
        var free = _free;
        free.Clear();
        for (int s = 0; s < slots.Length; s++)
            if (slots[s] is null) free.Add(s);
        var deferred = _deferred; // considered first, in order; those that still wait go back into _deferred
        (_deferred, _deferredSpare) = (_deferredSpare, deferred);
        _deferred.Clear();
        int nextDeferred = 0;
        while (free.Count > 0 && budget > 0)
        {
            BatchJob? job = null;
            while ((nextDeferred < deferred.Count ? deferred[nextDeferred++] : _pending.TryDequeue(out var queued) ? queued : null) is { } candidate)
            {
                if (Invalid(candidate.Request) is { } error) candidate.Done.TrySetException(error);
                else if (candidate.Ct.IsCancellationRequested)
                {
                    Finished(candidate, FinishReason.Cancelled); // counted before the caller can see the result
                    candidate.Done.TrySetResult(new GenerationResult([], FinishReason.Cancelled, null));
                }
                else if (WaitsForPrefill(candidate.Request)) _deferred.Add(candidate);
                else { job = candidate; break; }
            }
            if (job is null) break;
            var r = job.Request;
            var (s, reuse, copyFrom) = PickSlot(free, r);
            free.Remove(s);
            slots[s] = job;
            _computed[s] = -1; // not a source to copy from until its own prefill has run
            job.Admitted = System.Diagnostics.Stopwatch.GetTimestamp();
            job.Reused = reuse;
            Interlocked.Add(ref _promptTokens, r.PromptIds.Length);
            Interlocked.Add(ref _prefixHits, reuse);
            // a prompt to score is prefilled whole (its positions' hidden states are needed together)
            int feed = r.PromptLogprobs is null ? Math.Min(budget, r.PromptIds.Length - reuse) : r.PromptIds.Length - reuse;
            budget = Math.Max(0, budget - feed);
            _step.Admit(s, reuse, feed, copyFrom, r, samples: reuse + feed == r.PromptIds.Length);
            job.Position = reuse + feed;
        }
        // requests still waiting (for a slot, or for a prefix being prefilled) keep their order of arrival
        for (int i = nextDeferred; i < deferred.Count; i++) _deferred.Add(deferred[i]);
        deferred.Clear();
        if (_deferred.Count > 1) _deferred.Sort(static (a, b) => a.Submitted.CompareTo(b.Submitted));
        if (_step.Rows == 0) return 0;
        bool logprobs = false;
        foreach (var j in slots) logprobs |= j?.Logprobs is not null;
        return _step.Encode(logprobs, wire);
    }

    /// <summary>
    /// Takes back the planned step's results: <paramref name="picked"/>[r] and <paramref name="logprobs"/>[r] for its r-th
    /// sampled row, and <paramref name="promptLogprobs"/>[r] for a row whose prompt was scored. Delivers each token, and ends
    /// and frees the sequences that are done.
    /// </summary>
    public void Complete(ReadOnlySpan<int> picked, TokenLogprobs?[]? logprobs, TokenLogprobs?[]?[]? promptLogprobs)
    {
        var rowSlots = _step.SampledSlots;
        for (int r = 0; r < rowSlots.Count; r++)
        {
            int s = rowSlots[r];
            var job = _slots[s]!;
            if (promptLogprobs?[r] is { } scored) job.PromptLogprobs = scored;
            if (job.PromptLogprobs is { } promptLps && job.FirstToken == 0)
            {
                try { job.OnPrompt?.Invoke(promptLps); }
                catch (Exception) { /* as for OnToken */ }
                if (job.Request.MaxNewTokens == 0)
                {
                    job.FirstToken = System.Diagnostics.Stopwatch.GetTimestamp();
                    End(s, job, FinishReason.MaxTokens, []); // the prompt alone was asked for
                    continue;
                }
            }
            int tok = picked[r];
            job.Tokens.Add(tok);
            if (job.FirstToken == 0) job.FirstToken = System.Diagnostics.Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _generatedTokens);
            var lp = job.Logprobs is not null ? logprobs?[r] : null;
            if (lp is not null) job.Logprobs!.Add(lp);
            try { job.OnToken?.Invoke(tok, lp); }
            catch (Exception) { /* a listener's failure (e.g. a closed connection) must not stop the batch */ }
            var reason = job.Ct.IsCancellationRequested ? FinishReason.Cancelled : job.Request.FinishAfter(tok, job.Tokens.Count, job.Position, _context, _eos);
            if (reason is { } why) End(s, job, why, job.Tokens.ToArray()); // the slot is free for the next request at the next step
        }
    }

    /// <summary>Ends every request, queued or running, with <paramref name="error"/>.</summary>
    public void FailAll(Exception error)
    {
        FailQueued(error);
        foreach (var j in _deferred.ToArray()) j.Done.TrySetException(error);
        foreach (var j in _slots) j?.Done.TrySetException(error);
    }

    /// <summary>Ends the requests still queued (not yet planned) with <paramref name="error"/>; may be called from any thread.</summary>
    public void FailQueued(Exception error)
    {
        while (_pending.TryDequeue(out var j)) j.Done.TrySetException(error);
    }

    private void End(int slot, BatchJob job, FinishReason why, int[] tokens)
    {
        _slots[slot] = null;
        Remember(slot, job);
        Finished(job, why); // counted before the caller can see the result
        job.Done.TrySetResult(new GenerationResult(tokens, why, tokens.Length == 0 && why == FinishReason.Cancelled ? null : job.Logprobs?.ToArray(),
            job.PromptLogprobs, job.Reused));
    }

    private void Finished(BatchJob job, FinishReason reason)
    {
        if (RequestFinished is not { } handlers) return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        double Seconds(long from, long to) => System.Diagnostics.Stopwatch.GetElapsedTime(from, to).TotalSeconds;
        var stats = new RequestStats(job.Request.PromptIds.Length, job.Tokens.Count, reason,
            Seconds(job.Submitted, job.Admitted == 0 ? now : job.Admitted), job.FirstToken == 0 ? null : Seconds(job.Submitted, job.FirstToken), Seconds(job.Submitted, now));
        try { handlers(stats); }
        catch (Exception) { /* metrics must not stop the batch */ }
    }

    private TpLlmException? Invalid(GenerationRequest r)
    {
        try
        {
            r.Validate(_context, _vocabSize);
            _validate?.Invoke(r);
            return null;
        }
        catch (TpLlmException e)
        {
            return e;
        }
    }

    // the free slot whose cached tokens share the longest prefix with the prompt (at least one prompt token is
    // always prefilled, to sample from; a prompt to score is prefilled whole); without a match, the free slot
    // holding the fewest cached tokens, so that longer caches survive. If another slot — running, or free — holds a
    // longer shared prefix, it is copied into the chosen slot (every rank copies its own heads' keys and values).
    private (int Slot, int Reuse, int CopyFrom) PickSlot(List<int> free, GenerationRequest r)
    {
        bool caching = PrefixCaching && r.PromptLogprobs is null;
        int best = free[0], bestShared = -1;
        foreach (int s in free)
        {
            int shared = caching ? SharedWith(s, r.PromptIds) : 0;
            if (shared > bestShared || (shared == bestShared && _cachedTokens[s].Count < _cachedTokens[best].Count)) (best, bestShared) = (s, shared);
        }
        int last = r.PromptIds.Length - 1, reuse = Math.Min(bestShared, last), copyFrom = -1;
        for (int s = 0; s < _slots.Length && caching; s++)
        {
            int shared = s == best ? 0 : Math.Min(SharedWith(s, r.PromptIds), last);
            if (shared > reuse) (copyFrom, reuse) = (s, shared);
        }
        return (best, reuse, copyFrom);
    }

    // how much of the prompt slot s holds now: a free slot's remembered tokens, or a running sequence's computed
    // positions (its prompt, then the tokens fed back)
    private int SharedWith(int s, int[] prompt)
    {
        if (_slots[s] is not { } job) return Resumable(CollectionsMarshal.AsSpan(_cachedTokens[s]).CommonPrefixLength(prompt), _cachedTokens[s].Count);
        int n = _computed[s];
        if (n <= 0) return 0;
        var own = job.Request.PromptIds;
        int k = own.AsSpan(0, Math.Min(n, own.Length)).CommonPrefixLength(prompt);
        if (k < own.Length) return Resumable(k, n);
        int j = 0;
        while (k + j < n && k + j < prompt.Length && job.Tokens[j] == prompt[k + j]) j++;
        return Resumable(k + j, n);
    }

    // a shared prefix of `shared` tokens in a slot holding `held`: with sliding-window rings the slot must not have gone
    // more than RingChunk positions past it (one less, as a whole cached prompt is reused up to its last token), or
    // the window before it has been overwritten
    private int Resumable(int shared, int held) => held - (shared - 1) <= _ringSlack ? shared : 0;

    // a prompt that shares a long prefix with one still being prefilled waits for it, then copies it (n choices of a
    // prompt, or requests with one system prompt, prefill it once)
    private bool WaitsForPrefill(GenerationRequest r)
    {
        if (!PrefixCaching || r.PromptLogprobs is not null) return false;
        int now = 0, later = 0;
        for (int s = 0; s < _slots.Length; s++)
        {
            now = Math.Max(now, SharedWith(s, r.PromptIds));
            if (_slots[s] is { } job && _computed[s] < job.Request.PromptIds.Length)
                later = Math.Max(later, job.Request.PromptIds.AsSpan().CommonPrefixLength(r.PromptIds));
        }
        return Math.Min(later, r.PromptIds.Length - 1) - now >= MinSharedPrefix;
    }

    // what the slot's cache holds once its sequence has left: the prompt and the generated tokens fed back
    private void Remember(int slot, BatchJob job)
    {
        var cached = _cachedTokens[slot];
        cached.Clear();
        var prompt = job.Request.PromptIds;
        cached.AddRange(prompt.AsSpan(0, Math.Min(job.Position, prompt.Length))); // a prompt may have been cancelled half prefilled
        for (int i = 0; i < job.Position - prompt.Length; i++) cached.Add(job.Tokens[i]);
    }
}
