using Prometheus;
using TpLlm.Serving;

namespace TpLlm.Server;

/// <summary>
/// <c>GET /metrics</c> in Prometheus' text format, named like vLLM's (<c>tpllm_</c> for <c>vllm:</c>), every
/// series labelled with <c>model_name</c>: requests running and waiting, prompt and generation tokens,
/// finished requests by reason, and histograms of time to first token, end-to-end latency and queue time.
/// Each server has its own registry, so several servers in one process do not mix their figures.
/// </summary>
internal sealed class ServerMetrics
{
    private static readonly double[] LatencyBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160];

    /// <summary>The registry <c>/metrics</c> exports.</summary>
    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();

    public ServerMetrics(InferenceEngine engine)
    {
        var factory = Metrics.WithCustomRegistry(Registry);
        Registry.SetStaticLabels(new Dictionary<string, string> { ["model_name"] = engine.ModelId });
        var running = factory.CreateGauge("tpllm_num_requests_running", "Requests in the batch (holding a KV-cache slot).");
        var waiting = factory.CreateGauge("tpllm_num_requests_waiting", "Requests waiting for a slot.");
        var prompt = factory.CreateCounter("tpllm_prompt_tokens_total", "Prompt tokens of requests admitted to the batch.");
        var generated = factory.CreateCounter("tpllm_generation_tokens_total", "Tokens generated.");
        var cacheQueries = factory.CreateCounter("tpllm_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
        var cacheHits = factory.CreateCounter("tpllm_prefix_cache_hits_total", "Prompt tokens found in the prefix cache (not prefilled again).");
        var success = factory.CreateCounter("tpllm_request_success_total", "Requests ended, by finish reason (eos, max_tokens, context_full, cancelled).", "finished_reason");
        var ttft = Histogram(factory, "tpllm_time_to_first_token_seconds", "From submission to the first token.");
        var e2e = Histogram(factory, "tpllm_e2e_request_latency_seconds", "From submission to the end of the request.");
        var queue = Histogram(factory, "tpllm_request_queue_time_seconds", "From submission until the request joined the batch.");
        var batcher = engine.Batcher;
        Registry.AddBeforeCollectCallback(() =>
        {
            running.Set(batcher.ActiveSequences);
            waiting.Set(batcher.WaitingRequests);
            prompt.IncTo(batcher.PromptTokensTotal);
            generated.IncTo(batcher.GeneratedTokensTotal);
            cacheQueries.IncTo(batcher.PromptTokensTotal);
            cacheHits.IncTo(batcher.PrefixCacheHitTokensTotal);
        });
        batcher.RequestFinished += s =>
        {
            success.WithLabels(Reason(s.Reason)).Inc();
            if (s.TimeToFirstTokenSeconds is { } t) ttft.Observe(t);
            e2e.Observe(s.TotalSeconds);
            queue.Observe(s.QueueSeconds);
        };
    }

    private static Histogram Histogram(IMetricFactory factory, string name, string help) =>
        factory.CreateHistogram(name, help, new HistogramConfiguration { Buckets = LatencyBuckets });

    private static string Reason(TpLlm.Models.FinishReason r) => r switch
    {
        TpLlm.Models.FinishReason.Eos => "eos",
        TpLlm.Models.FinishReason.MaxTokens => "max_tokens",
        TpLlm.Models.FinishReason.ContextFull => "context_full",
        TpLlm.Models.FinishReason.Cancelled => "cancelled",
        _ => r.ToString().ToLowerInvariant(),
    };
}
