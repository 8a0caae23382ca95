using System.Collections.Concurrent;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Sampling;
using TpLlm.Sampling.Json;

namespace TpLlm.Serving;

/// <summary>
/// Continuous batching over in-process tensor-parallel ranks. Requests join the running batch
/// at the next step; each step runs every active sequence through the model once — new prompts
/// as prefill chunks, running ones as one decode token — and the LM head once over all of them
/// (<c>[B, H]</c>), sampling each with its own parameters. Finished sequences leave and free
/// their KV-cache slot. Rank 0 plans each step and broadcasts the plan; every rank executes it.
/// A sequence's tokens do not depend on what else is in the batch.
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    private sealed class Job(GenerationRequest request, Action<int, TokenLogprobs?>? onToken, CancellationToken ct, Action<TokenLogprobs?[]>? onPrompt)
    {
        public readonly GenerationRequest Request = request;
        public readonly Action<int, TokenLogprobs?>? OnToken = onToken;
        public readonly Action<TokenLogprobs?[]>? OnPrompt = onPrompt;
        public TokenLogprobs?[]? PromptLogprobs;
        public readonly CancellationToken Ct = ct;
        public readonly TaskCompletionSource<GenerationResult> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly List<int> Tokens = new(Math.Clamp(request.MaxNewTokens, 1, 4096)); // grown by steps only past 4096
        public readonly List<TokenLogprobs>? Logprobs = request.WantLogprobs || request.TopLogprobs > 0 ? [] : null;
        public int Position; // tokens in the cache
        public int Reused;   // prompt tokens whose keys and values were already in the slot (prefix caching)
        public readonly long Submitted = System.Diagnostics.Stopwatch.GetTimestamp();
        public long Admitted, FirstToken; // Stopwatch timestamps; 0 = not yet
    }

    private readonly ModelFolder _folder;
    private readonly ModelOptions _options;
    private readonly int _tp = 1;
    private readonly ConcurrentQueue<Job> _pending = new();
    private readonly SemaphoreSlim _signal = new(0);
    private Thread? _thread;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<int> _eos;
    private volatile bool _stopping;
    private volatile Exception? _failure;
    private Job?[] _slots = [];
    private List<int>[] _cachedTokens = [];   // rank 0: per slot, the tokens whose keys and values the slot holds
    private readonly StepPlan _step = new(); // rank 0: the step, while it is planned
    private List<Job> _deferred = [], _deferredSpare = []; // rank 0: requests waiting for a shared prompt prefix another slot is prefilling
    private readonly List<int> _free = [];    // rank 0: free slots, while a plan is built
    private int[] _computed = [];             // rank 0: per slot, positions with keys and values at the start of the step (-1: admitted in it)
    private int _ringSlack = int.MaxValue;    // rank 0: how far past a shared prefix a slot may be and still resume from it (sliding-window rings)

    /// <summary>A request waits for another slot's prefill (then copies it) when they share at least this many prompt tokens.</summary>
    public const int MinSharedPrefix = 16;

    /// <summary>
    /// Automatic prefix caching (on by default, as in vLLM): a new request takes the free slot whose cached
    /// tokens share the longest prefix with its prompt, and only the rest of the prompt is prefilled.
    /// A finished sequence's keys and values stay in its slot until another sequence overwrites them.
    /// Changing it affects requests admitted afterwards.
    /// </summary>
    public bool PrefixCaching
    {
        get => _prefixCaching;
        set => _prefixCaching = value;
    }

    private volatile bool _prefixCaching = true;

    /// <summary>
    /// Chunked prefill (vLLM's <c>max_num_batched_tokens</c>): at most this many prompt tokens are prefilled per
    /// step, so a long prompt is prefilled over several steps while the running sequences keep decoding between
    /// them; 0 = whole prompts at once. A prompt whose log-probabilities are asked for is prefilled whole.
    /// Changing it affects the next step.
    /// </summary>
    public int MaxPrefillTokens
    {
        get => _maxPrefillTokens;
        set => _maxPrefillTokens = value >= 0 ? value : throw new TpLlmException($"--max-prefill-tokens {value} must be ≥ 0 (0 = whole prompts)");
    }

    private volatile int _maxPrefillTokens = DefaultMaxPrefillTokens;

    /// <summary>The default of <see cref="MaxPrefillTokens"/>.</summary>
    public const int DefaultMaxPrefillTokens = 64;

    /// <summary>Prompt tokens that prefix caching spared from prefill, over all requests.</summary>
    public long PrefixCacheHitTokensTotal => Interlocked.Read(ref _prefixHits);

    /// <summary>Sequences that can run at once (KV-cache slots).</summary>
    public int MaxBatch { get; }

    /// <summary>Completes when every rank has loaded its shards.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Tokens one sequence can hold (prompt and output); known once <see cref="Ready"/> completes.</summary>
    public int MaxContext { get; private set; }

    /// <summary>Starts <paramref name="tp"/> ranks as threads of this process serving <paramref name="folder"/> with up to <paramref name="maxBatch"/> sequences at once.</summary>
    public ContinuousBatcher(ModelFolder folder, int tp, int maxBatch, ModelOptions? options = null)
        : this(folder, maxBatch, options)
    {
        if (tp < 1) throw new TpLlmException($"--tp {tp} must be ≥ 1");
        _tp = tp;
        _thread = new Thread(Run) { IsBackground = true, Name = "tpllm-batcher" };
        _thread.Start();
    }

    private ContinuousBatcher(ModelFolder folder, int maxBatch, ModelOptions? options)
    {
        if (maxBatch < 1) throw new TpLlmException($"--max-batch {maxBatch} must be ≥ 1");
        _folder = folder;
        MaxBatch = maxBatch;
        _options = (options ?? new ModelOptions()) with { MaxSequences = maxBatch, HeadStrategy = LmHeadStrategy.ColumnParallel };
        _eos = [.. folder.Config.EosTokenIds];
    }

    /// <summary>
    /// Rank 0 of a tensor-parallel group whose other ranks are other processes (MPI): this process
    /// takes the requests and plans each step; the others run <see cref="Follow"/> on the same group.
    /// </summary>
    public static ContinuousBatcher Lead(ModelFolder folder, ICommunicator comm, int maxBatch, ModelOptions? options = null)
    {
        if (comm.Rank != 0) throw new TpLlmException($"rank {comm.Rank} cannot lead the batch; rank 0 does, the others follow");
        var b = new ContinuousBatcher(folder, maxBatch, options);
        b._thread = new Thread(() =>
        {
            try { b.RankLoop(comm); }
            catch (Exception e) { b.Fail(e); }
        }) { IsBackground = true, Name = "tpllm-batcher" };
        b._thread.Start();
        return b;
    }

    /// <summary>A non-zero rank of the group: executes the steps rank 0 plans, until rank 0 stops. Blocks.</summary>
    public static void Follow(ModelFolder folder, ICommunicator comm, int maxBatch, ModelOptions? options = null)
    {
        if (comm.Rank == 0) throw new TpLlmException("rank 0 leads the batch (ContinuousBatcher.Lead); only other ranks follow");
        new ContinuousBatcher(folder, maxBatch, options).RankLoop(comm);
    }

    /// <summary>
    /// Queues a request; <paramref name="onToken"/> sees each token as it is picked, and
    /// <paramref name="onPromptLogprobs"/> the prompt's log-probabilities (when the request asks for
    /// them) before the first token.
    /// </summary>
    public Task<GenerationResult> Submit(GenerationRequest request, Action<int, TokenLogprobs?>? onToken = null, CancellationToken ct = default,
        Action<TokenLogprobs?[]>? onPromptLogprobs = null)
    {
        if (_failure is not null) throw new TpLlmException($"the engine has stopped: {_failure.Message}", _failure);
        ObjectDisposedException.ThrowIf(_stopping, this);
        var job = new Job(request, onToken, ct, onPromptLogprobs);
        _pending.Enqueue(job);
        _signal.Release();
        return job.Done.Task;
    }

    private void Run()
    {
        try
        {
            ThreadRanks.Run(_tp, RankLoop, TimeSpan.FromSeconds(60));
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Fail(Exception e)
    {
        _failure = e;
        _ready.TrySetException(e);
        while (_pending.TryDequeue(out var j)) j.Done.TrySetException(e);
        foreach (var j in _deferred.ToArray()) j.Done.TrySetException(e);
        foreach (var j in _slots) j?.Done.TrySetException(e);
    }

    /// <summary>Sequences holding a KV-cache slot right now (a snapshot).</summary>
    public int ActiveSequences => _slots.Count(j => j is not null);

    /// <summary>Requests submitted but not yet in the batch (a snapshot).</summary>
    public int WaitingRequests => _pending.Count + _deferred.Count;

    /// <summary>Prompt tokens of every request admitted to the batch so far.</summary>
    public long PromptTokensTotal => Interlocked.Read(ref _promptTokens);

    /// <summary>Tokens generated so far, over all requests.</summary>
    public long GeneratedTokensTotal => Interlocked.Read(ref _generatedTokens);

    /// <summary>
    /// Raised on the batch's thread as each request ends (finished, cancelled, or cancelled before it
    /// joined); keep handlers quick. A handler's exception is ignored.
    /// </summary>
    public event Action<RequestStats>? RequestFinished;

    private long _promptTokens, _generatedTokens, _prefixHits;

    private void Finished(Job job, FinishReason reason)
    {
        if (RequestFinished is not { } handlers) return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        double Seconds(long from, long to) => System.Diagnostics.Stopwatch.GetElapsedTime(from, to).TotalSeconds;
        var stats = new RequestStats(job.Request.PromptIds.Length, job.Tokens.Count, reason,
            Seconds(job.Submitted, job.Admitted == 0 ? now : job.Admitted), job.FirstToken == 0 ? null : Seconds(job.Submitted, job.FirstToken), Seconds(job.Submitted, now));
        try { handlers(stats); }
        catch (Exception) { /* metrics must not stop the batch */ }
    }

    /// <summary>Why the engine stopped, or null while it runs.</summary>
    public Exception? Failure => _failure;

    /// <summary>Test hook: rank 0 calls it after each step's tokens are delivered (e.g. to pace the batch so a test can act mid-stream).</summary>
    internal Action? AfterStep { get; set; }

    // every rank: run the steps rank 0 plans (StepPlan: its wire format), until rank 0 stops
    private void RankLoop(ICommunicator comm)
    {
        using var model = DecoderModel.Load(_folder.Config, _folder.Checkpoint, comm, _options);
        var head = (IVocabParallelHead)model.Head;
        var sampler = new VocabParallelSampler(comm, head.Partition, _folder.SamplableVocab);
        var penalties = TokenPenalties.ForShard(head.Partition, comm.Rank, sampler.SamplableVocab, MaxBatch, _eos, model.MaxContext);
        JsonConstraint? json = null; // made at the first request in JSON mode
        var scorer = new PromptScorer(head, sampler, model.MatMul, _folder.Config.HiddenSize);
        var allHidden = Array.Empty<float>(); // [T, H]: every position, when a prompt is scored
        var scored = new List<(int Row, int First, int Length, int TopN)>();
        int H = _folder.Config.HiddenSize, B = MaxBatch, ctx = model.MaxContext;
        var slots = new Job?[B];                    // rank 0's view of who runs where
        if (comm.Rank == 0)
        {
            _ringSlack = model.Cache.HasRings ? KvCache.RingChunk : int.MaxValue;
            _slots = slots;
            _cachedTokens = [.. Enumerable.Range(0, B).Select(_ => new List<int>())];
            _computed = new int[B];
        }
        var slotParams = new SamplingParams[B];     // every rank: the sampling state of each slot
        var slotRng = new SplitMix64[B];
        var slotTop = new int[B];
        var header = new int[1];
        var plan = new List<int>();
        var planBuffer = Array.Empty<int>();
        var hidden = new float[B * H];
        var local = new float[B * head.Partition.ShardSize];
        var picked = new int[B];
        var rowSlot = new int[B];
        var ps = new SamplingParams[B];
        var rs = new SplitMix64[B];
        var chunks = new SequenceChunk[B];
        var tokens = new List<int>();
        comm.Barrier();
        MaxContext = ctx;
        if (comm.Rank == 0) _ready.TrySetResult();
        while (true)
        {
            if (comm.Rank == 0)
            {
                plan.Clear();
                header[0] = _stopping ? -1 : BuildPlan(slots, plan, ctx);
                if (header[0] == 0) _signal.Wait(200); // idle: beat every 200 ms so the other ranks' collectives do not time out
            }
            comm.Broadcast<int>(header, 0);
            if (header[0] < 0)
            {
                if (comm.Rank == 0)
                    foreach (var j in slots.Concat(_deferred)) j?.Done.TrySetException(new ObjectDisposedException(nameof(ContinuousBatcher), "the engine stopped before the request finished"));
                return;
            }
            if (header[0] == 0) continue;
            if (planBuffer.Length < header[0]) planBuffer = new int[header[0] * 2];
            if (comm.Rank == 0) plan.CopyTo(planBuffer);
            comm.Broadcast<int>(planBuffer.AsSpan(0, header[0]), 0);

            // every rank: the plan's rows become chunks, tokens and per-row sampling state
            var step = new StepPlan.Reader(planBuffer.AsSpan(0, header[0]));
            int rows = step.Rows, S = step.SampledRows, topN = 0; // the first S rows sample
            bool wantLogprobs = step.WantLogprobs;
            tokens.Clear();
            bool anyPenalties = false, anyJson = false;
            scored.Clear();
            for (int r = 0; r < rows; r++)
            {
                step.Next(out int slot, out int start, out var fed, out var admission);
                int at = tokens.Count, feed = fed.Length;
                tokens.AddRange(fed);
                if (admission is { } a)
                {
                    if (a.CopyFrom >= 0) model.Cache.CopyPrefix(a.CopyFrom, slot, start); // a prefix another slot holds
                    slotParams[slot] = a.Sampling;
                    slotRng[slot] = new SplitMix64(a.Sampling.Seed);
                    slotTop[slot] = a.TopLogprobs;
                    penalties.Begin(slot, a.Prompt, a.Sampling, a.StopTokenIds, a.IgnoreEos);
                    bool jsonMode = a.ResponseFormat == ResponseFormat.JsonObject;
                    if (jsonMode) json ??= JsonConstraint.ForShard(head.Partition, comm.Rank, sampler.SamplableVocab, B, _folder.Tokenizer!.TextTokenBytes, _eos);
                    json?.Begin(slot, jsonMode, a.Sampling.MinTokens, a.IgnoreEos, a.StopTokenIds);
                    if (a.PromptLogprobs >= 0) scored.Add((r, at, feed, a.PromptLogprobs)); // the chunk's place among the step's tokens (the whole prompt)
                }
                chunks[r] = new SequenceChunk(slot, start, feed);
                rowSlot[r] = slot;
                if (r >= S) continue; // a prefill chunk that is not the prompt's last: nothing to sample yet
                anyPenalties |= slotParams[slot].ChangesLogits;
                anyJson |= json?.IsOn(slot) == true;
                ps[r] = slotParams[slot];
                rs[r] = slotRng[slot];
                topN = Math.Max(topN, slotTop[slot]);
            }
            var stepTokens = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens);
            if (scored.Count == 0) model.Forward(stepTokens, chunks.AsSpan(0, rows), hidden);
            else ScorePrompts(model, scorer, stepTokens, chunks.AsSpan(0, rows), scored, ref allHidden, hidden, slots, rowSlot);
            if (S > 0) // every rank knows S from the plan, so all of them skip the collectives below together
            {
                head.ForwardLocal(model.MatMul, hidden, S, local);
                if (anyPenalties) penalties.Apply(local, rowSlot, S);
                if (anyJson) json!.Apply(local, rowSlot, S);
                sampler.Sample(local, S, ps, rs, picked);
                if (anyJson)
                {
                    json!.Restore(local);
                    for (int r = 0; r < S; r++) json.Record(rowSlot[r], picked[r]);
                }
                if (anyPenalties)
                {
                    penalties.Restore(local); // logprobs are the model's, as in vLLM
                    for (int r = 0; r < S; r++) penalties.Record(rowSlot[r], picked[r]);
                }
                var lps = wantLogprobs ? sampler.Logprobs(local, S, picked.AsSpan(0, S), topN) : null; // a collective: every rank reads the flag from the plan
                if (comm.Rank == 0) Deliver(slots, rowSlot, S, picked, lps, ctx);
            }
            if (comm.Rank == 0) AfterStep?.Invoke();
        }
    }

    // a step with prompts to score: every position's hidden state, the prompts scored (a collective, in plan
    // order on every rank), and the last positions copied out for sampling
    private void ScorePrompts(DecoderModel model, PromptScorer scorer, ReadOnlySpan<int> stepTokens, ReadOnlySpan<SequenceChunk> chunks,
        List<(int Row, int First, int Length, int TopN)> scored, ref float[] allHidden, float[] hidden, Job?[] slots, int[] rowSlot)
    {
        int H = _folder.Config.HiddenSize, T = stepTokens.Length;
        if (allHidden.Length < T * H) allHidden = new float[T * H];
        model.Forward(stepTokens, chunks, allHidden, allPositions: true);
        int end = 0;
        for (int r = 0; r < chunks.Length; r++)
        {
            end += chunks[r].Length;
            allHidden.AsSpan((end - 1) * H, H).CopyTo(hidden.AsSpan(r * H, H));
        }
        foreach (var (row, first, length, topN) in scored)
        {
            var lps = scorer.Score(allHidden.AsSpan(first * H, length * H), stepTokens.Slice(first, length), topN);
            if (slots[rowSlot[row]] is { } job) job.PromptLogprobs = lps; // only rank 0 has jobs
        }
    }

    private int BuildPlan(Job?[] slots, List<int> plan, int ctx)
    {
        _step.Clear();
        Span<int> next = stackalloc int[1];
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
                slots[s] = null;
                Remember(s, job);
                Finished(job, FinishReason.Cancelled);
                job.Done.TrySetResult(new GenerationResult([], FinishReason.Cancelled, null, null, job.Reused));
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
            Job? job = null;
            while ((nextDeferred < deferred.Count ? deferred[nextDeferred++] : _pending.TryDequeue(out var queued) ? queued : null) is { } candidate)
            {
                var error = Validate(candidate.Request, ctx);
                if (error is not null) candidate.Done.TrySetException(error);
                else if (candidate.Ct.IsCancellationRequested)
                {
                    Finished(candidate, FinishReason.Cancelled); // counted before the caller can see the result
                    candidate.Done.TrySetResult(new GenerationResult([], FinishReason.Cancelled, null));
                }
                else if (WaitsForPrefill(candidate.Request, slots)) _deferred.Add(candidate);
                else { job = candidate; break; }
            }
            if (job is null) break;
            var r = job.Request;
            var (s, reuse, copyFrom) = PickSlot(free, r, slots);
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
        return _step.Encode(logprobs, plan);
    }

    // the free slot whose cached tokens share the longest prefix with the prompt (at least one prompt token is
    // always prefilled, to sample from; a prompt to score is prefilled whole); without a match, the free slot
    // holding the fewest cached tokens, so that longer caches survive. If another slot — running, or free — holds a
    // longer shared prefix, it is copied into the chosen slot (every rank copies its own heads' keys and values).
    private (int Slot, int Reuse, int CopyFrom) PickSlot(List<int> free, GenerationRequest r, Job?[] slots)
    {
        bool caching = PrefixCaching && r.PromptLogprobs is null;
        int best = free[0], bestShared = -1;
        foreach (int s in free)
        {
            int shared = caching ? SharedWith(s, r.PromptIds, slots) : 0;
            if (shared > bestShared || (shared == bestShared && _cachedTokens[s].Count < _cachedTokens[best].Count)) (best, bestShared) = (s, shared);
        }
        int last = r.PromptIds.Length - 1, reuse = Math.Min(bestShared, last), copyFrom = -1;
        for (int s = 0; s < slots.Length && caching; s++)
        {
            int shared = s == best ? 0 : Math.Min(SharedWith(s, r.PromptIds, slots), last);
            if (shared > reuse) (copyFrom, reuse) = (s, shared);
        }
        return (best, reuse, copyFrom);
    }

    // how much of the prompt slot s holds now: a free slot's remembered tokens, or a running sequence's computed
    // positions (its prompt, then the tokens fed back)
    private int SharedWith(int s, int[] prompt, Job?[] slots)
    {
        if (slots[s] is not { } job) return Resumable(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_cachedTokens[s]).CommonPrefixLength(prompt), _cachedTokens[s].Count);
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
    private bool WaitsForPrefill(GenerationRequest r, Job?[] slots)
    {
        if (!PrefixCaching || r.PromptLogprobs is not null) return false;
        int now = 0, later = 0;
        for (int s = 0; s < slots.Length; s++)
        {
            now = Math.Max(now, SharedWith(s, r.PromptIds, slots));
            if (slots[s] is { } job && _computed[s] < job.Request.PromptIds.Length)
                later = Math.Max(later, job.Request.PromptIds.AsSpan().CommonPrefixLength(r.PromptIds));
        }
        return Math.Min(later, r.PromptIds.Length - 1) - now >= MinSharedPrefix;
    }

    private TpLlmException? Validate(GenerationRequest r, int ctx)
    {
        try
        {
            r.Validate(ctx, _folder.Config.VocabSize);
            if (r.ResponseFormat == ResponseFormat.JsonObject && _folder.Tokenizer is null)
                throw new TpLlmException($"{_folder.Path}: JSON output needs the model's tokenizer.json to know each token's text");
            return null;
        }
        catch (TpLlmException e)
        {
            return e;
        }
    }

    private void Deliver(Job?[] slots, int[] rowSlot, int rows, int[] picked, TokenLogprobs[]? lps, int ctx)
    {
        for (int r = 0; r < rows; r++)
        {
            int s = rowSlot[r];
            var job = slots[s]!;
            if (job.PromptLogprobs is { } promptLps && job.FirstToken == 0)
            {
                try { job.OnPrompt?.Invoke(promptLps); }
                catch (Exception) { /* as for OnToken */ }
                if (job.Request.MaxNewTokens == 0)
                {
                    slots[s] = null; // the prompt alone was asked for
                    Remember(s, job);
                    job.FirstToken = System.Diagnostics.Stopwatch.GetTimestamp();
                    Finished(job, FinishReason.MaxTokens);
                    job.Done.TrySetResult(new GenerationResult([], FinishReason.MaxTokens, job.Logprobs?.ToArray(), promptLps, job.Reused));
                    continue;
                }
            }
            int tok = picked[r];
            job.Tokens.Add(tok);
            if (job.FirstToken == 0) job.FirstToken = System.Diagnostics.Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _generatedTokens);
            TokenLogprobs? lp = null;
            if (job.Logprobs is not null && lps is not null)
            {
                lp = lps[r].TakeTop(job.Request.TopLogprobs);
                job.Logprobs.Add(lp);
            }
            try { job.OnToken?.Invoke(tok, lp); }
            catch (Exception) { /* a listener's failure (e.g. a closed connection) must not stop the batch */ }
            FinishReason? reason = null;
            if (job.Ct.IsCancellationRequested) reason = FinishReason.Cancelled;
            else if ((!job.Request.IgnoreEos && _eos.Contains(tok)) || job.Request.StopTokenIds.Contains(tok)) reason = FinishReason.Eos;
            else if (job.Tokens.Count >= job.Request.MaxNewTokens) reason = FinishReason.MaxTokens;
            else if (job.Position + 1 >= ctx) reason = FinishReason.ContextFull;
            if (reason is { } why)
            {
                slots[s] = null; // the slot is free for the next request at the next step
                Remember(s, job);
                Finished(job, why); // counted before the caller can see the result
                job.Done.TrySetResult(new GenerationResult(job.Tokens.ToArray(), why, job.Logprobs?.ToArray(), job.PromptLogprobs, job.Reused));
            }
        }
    }

    // what the slot's cache holds once its sequence has left: the prompt and the generated tokens fed back
    private void Remember(int slot, Job job)
    {
        var cached = _cachedTokens[slot];
        cached.Clear();
        var prompt = job.Request.PromptIds;
        cached.AddRange(prompt.AsSpan(0, Math.Min(job.Position, prompt.Length))); // a prompt may have been cancelled half prefilled
        for (int i = 0; i < job.Position - prompt.Length; i++) cached.Add(job.Tokens[i]);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _signal.Release();
        _thread?.Join(TimeSpan.FromSeconds(30));
        while (_pending.TryDequeue(out var j)) j.Done.TrySetException(new ObjectDisposedException(nameof(ContinuousBatcher)));
    }
}
