using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>
/// Continuous batching over tensor-parallel ranks. Requests join the running batch at the next step; each step runs every
/// active sequence through the model once — new prompts as prefill chunks, running ones as one decode token — and the LM
/// head once over all of them (<c>[B, H]</c>), sampling each with its own parameters. Finished sequences leave and free
/// their KV-cache slot. Rank 0's <see cref="Scheduler"/> plans each step and broadcasts the plan (<see cref="StepPlan"/>);
/// every rank runs it through a <see cref="StepExecutor"/>, as <see cref="Generator"/> runs its steps. A sequence's tokens
/// do not depend on what else is in the batch.
/// </summary>
public sealed class ContinuousBatcher : IDisposable
{
    private readonly ModelFolder _folder;
    private readonly ModelOptions _modelOptions;
    private readonly TimeSpan _timeout;
    private readonly int _tp = 1;
    private readonly Scheduler _scheduler;
    private readonly SemaphoreSlim _signal = new(0);
    private Thread? _thread;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private volatile Exception? _failure;

    /// <summary>A request waits for another slot's prefill (then copies it) when they share at least this many prompt tokens.</summary>
    public const int MinSharedPrefix = Scheduler.MinSharedPrefix;

    /// <summary>Automatic prefix caching (<see cref="BatcherOptions.PrefixCaching"/>); changing it affects requests admitted afterwards.</summary>
    public bool PrefixCaching
    {
        get => _scheduler.PrefixCaching;
        set => _scheduler.PrefixCaching = value;
    }

    /// <summary>Chunked prefill (<see cref="BatcherOptions.MaxPrefillTokens"/>); changing it affects the next step.</summary>
    public int MaxPrefillTokens
    {
        get => _scheduler.MaxPrefillTokens;
        set => _scheduler.MaxPrefillTokens = value;
    }

    /// <summary>Prompt tokens that prefix caching spared from prefill, over all requests.</summary>
    public long PrefixCacheHitTokensTotal => _scheduler.PrefixCacheHitTokensTotal;

    /// <summary>Sequences that can run at once (KV-cache slots).</summary>
    public int MaxBatch { get; }

    /// <summary>Completes when every rank has loaded its shards.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Tokens one sequence can hold (prompt and output); known once <see cref="Ready"/> completes.</summary>
    public int MaxContext { get; private set; }

    /// <summary>Starts <paramref name="tp"/> ranks as threads of this process serving <paramref name="folder"/>.</summary>
    public ContinuousBatcher(ModelFolder folder, int tp, BatcherOptions? options = null)
        : this(folder, options ?? new BatcherOptions())
    {
        if (tp < 1) throw new InvalidRequestException("tp", $"{{field}} {tp} must be ≥ 1");
        _tp = tp;
        _thread = new Thread(Run) { IsBackground = true, Name = "tpllm-batcher" };
        _thread.Start();
    }

    private ContinuousBatcher(ModelFolder folder, BatcherOptions options)
    {
        _modelOptions = options.ModelOptionsForBatch();
        _timeout = options.Timeout;
        _folder = folder;
        MaxBatch = options.MaxBatch;
        _scheduler = new Scheduler(MaxBatch, folder.Config.VocabSize, folder.Config.EosTokenIds, ValidateForModel)
        {
            PrefixCaching = options.PrefixCaching, MaxPrefillTokens = options.MaxPrefillTokens,
        };
    }

    /// <summary>
    /// Rank 0 of a tensor-parallel group whose other ranks are other processes (MPI): this process takes the requests and
    /// plans each step; the others run <see cref="Follow"/> on the same group with the same options.
    /// </summary>
    public static ContinuousBatcher Lead(ModelFolder folder, ICommunicator comm, BatcherOptions? options = null)
    {
        if (comm.Rank != 0) throw new TpLlmException($"rank {comm.Rank} cannot lead the batch; rank 0 does, the others follow");
        var b = new ContinuousBatcher(folder, options ?? new BatcherOptions());
        b._thread = new Thread(() =>
        {
            try { b.RankLoop(comm); }
            catch (Exception e) { b.Fail(e); }
        }) { IsBackground = true, Name = "tpllm-batcher" };
        b._thread.Start();
        return b;
    }

    /// <summary>A non-zero rank of the group: executes the steps rank 0 plans, until rank 0 stops. Blocks.</summary>
    public static void Follow(ModelFolder folder, ICommunicator comm, BatcherOptions? options = null)
    {
        if (comm.Rank == 0) throw new TpLlmException("rank 0 leads the batch (ContinuousBatcher.Lead); only other ranks follow");
        new ContinuousBatcher(folder, options ?? new BatcherOptions()).RankLoop(comm);
    }

    /// <summary>
    /// Queues a request; <paramref name="onToken"/> sees each token as it is picked, and <paramref name="onPromptLogprobs"/>
    /// the prompt's log-probabilities (when the request asks for them) before the first token.
    /// </summary>
    public Task<GenerationResult> Submit(GenerationRequest request, Action<int, TokenLogprobs?>? onToken = null, CancellationToken ct = default,
        Action<TokenLogprobs?[]>? onPromptLogprobs = null)
    {
        if (_failure is not null) throw new TpLlmException($"the engine has stopped: {_failure.Message}", _failure);
        ObjectDisposedException.ThrowIf(_stopping, this);
        var job = new BatchJob(request, onToken, ct, onPromptLogprobs);
        BeforeQueue?.Invoke();
        _scheduler.Submit(job);
        // The engine may have stopped between the checks above and the queueing, and swept the queue before the job was
        // in it: sweep again, so that the job ends as the others did instead of waiting for steps that will never run.
        Interlocked.MemoryBarrier();
        if (_failure is { } failure) _scheduler.FailQueued(failure);
        else if (_stopping) _scheduler.FailQueued(new ObjectDisposedException(nameof(ContinuousBatcher), "the engine stopped before the request finished"));
        _signal.Release();
        return job.Done.Task;
    }

    // what this model cannot do, beyond GenerationRequest.Validate
    private void ValidateForModel(GenerationRequest r)
    {
        if (r.ResponseFormat == ResponseFormat.JsonObject && _folder.Tokenizer is null)
            throw new TpLlmException($"{_folder.Path}: JSON output needs the model's tokenizer.json to know each token's text");
    }

    private void Run()
    {
        try
        {
            ThreadRanks.Run(_tp, RankLoop, _timeout);
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
        _scheduler.FailAll(e);
    }

    /// <summary>Sequences holding a KV-cache slot right now (a snapshot).</summary>
    public int ActiveSequences => _scheduler.ActiveSequences;

    /// <summary>Requests submitted but not yet in the batch (a snapshot).</summary>
    public int WaitingRequests => _scheduler.WaitingRequests;

    /// <summary>Prompt tokens of every request admitted to the batch so far.</summary>
    public long PromptTokensTotal => _scheduler.PromptTokensTotal;

    /// <summary>Tokens generated so far, over all requests.</summary>
    public long GeneratedTokensTotal => _scheduler.GeneratedTokensTotal;

    /// <summary>
    /// Raised on the batch's thread as each request ends (finished, cancelled, or cancelled before it joined); keep
    /// handlers quick. A handler's exception is ignored.
    /// </summary>
    public event Action<RequestStats>? RequestFinished
    {
        add => _scheduler.RequestFinished += value;
        remove => _scheduler.RequestFinished -= value;
    }

    /// <summary>Why the engine stopped, or null while it runs.</summary>
    public Exception? Failure => _failure;

    /// <summary>Test hook: <see cref="Submit"/> calls it after its checks, just before it queues the request.</summary>
    internal Action? BeforeQueue { get; set; }

    /// <summary>Test hook: rank 0 calls it after each step's tokens are delivered (e.g. to pace the batch so a test can act mid-stream).</summary>
    internal Action? AfterStep { get; set; }

    // every rank: run the steps rank 0 plans, until rank 0 stops
    private void RankLoop(ICommunicator comm)
    {
        using var model = DecoderModel.Load(_folder.Config, _folder.Checkpoint, comm, _modelOptions);
        var executor = new StepExecutor(model, _folder.SamplableVocab, _folder.Config.EosTokenIds, () => _folder.Tokenizer!.TextTokenBytes);
        int B = MaxBatch;
        if (comm.Rank == 0) _scheduler.Start(model.MaxContext, model.Cache.HasRings ? KvCache.RingChunk : int.MaxValue);
        var header = new int[1];
        var plan = new List<int>();
        var wire = Array.Empty<int>();
        var picked = new int[B];
        var chunks = new SequenceChunk[B];
        var tokens = new List<int>();
        var score = new List<(int Row, int TopN)>();
        var promptLogprobs = new TokenLogprobs?[]?[B];
        comm.Barrier();
        MaxContext = model.MaxContext;
        if (comm.Rank == 0) _ready.TrySetResult();
        while (true)
        {
            if (comm.Rank == 0)
            {
                header[0] = _stopping ? -1 : _scheduler.Plan(plan);
                if (header[0] == 0) _signal.Wait(200); // idle: beat every 200 ms so the other ranks' collectives do not time out
            }
            comm.Broadcast<int>(header, 0);
            if (header[0] < 0)
            {
                if (comm.Rank == 0) _scheduler.FailAll(new ObjectDisposedException(nameof(ContinuousBatcher), "the engine stopped before the request finished"));
                return;
            }
            if (header[0] == 0) continue;
            if (wire.Length < header[0]) wire = new int[header[0] * 2];
            if (comm.Rank == 0) plan.CopyTo(wire);
            comm.Broadcast<int>(wire.AsSpan(0, header[0]), 0);

            // every rank: the plan's rows become chunks and tokens; new requests start in their slots
            var step = new StepPlan.Reader(wire.AsSpan(0, header[0]));
            int rows = step.Rows, S = step.SampledRows; // the first S rows sample
            tokens.Clear();
            score.Clear();
            for (int r = 0; r < rows; r++)
            {
                step.Next(out int slot, out int start, out var fed, out var admission);
                tokens.AddRange(fed);
                if (admission is { } a)
                {
                    if (a.CopyFrom >= 0) model.Cache.CopyPrefix(a.CopyFrom, slot, start); // a prefix another slot holds
                    executor.Begin(slot, a.Sequence, a.TopLogprobs);
                    if (a.PromptLogprobs >= 0) score.Add((r, a.PromptLogprobs)); // a prompt to score is fed whole
                }
                chunks[r] = new SequenceChunk(slot, start, fed.Length);
            }
            var lps = executor.Run(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens), chunks.AsSpan(0, rows), S, step.WantLogprobs, picked, score, promptLogprobs);
            if (comm.Rank == 0)
            {
                _scheduler.Complete(picked.AsSpan(0, S), lps, score.Count > 0 ? promptLogprobs : null);
                if (score.Count > 0) Array.Clear(promptLogprobs);
                AfterStep?.Invoke();
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _signal.Release();
        _thread?.Join(_timeout); // the ranks stop at the next step; a rank stuck in a collective gives up within the timeout
        _scheduler.FailAll(new ObjectDisposedException(nameof(ContinuousBatcher)));
    }
}
