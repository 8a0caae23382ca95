using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using TpLlm.Distributed.Mpi;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Serving;
using TpLlm.Server;

namespace TpLlm.Cli;

/// <summary>
/// <c>tpllm serve</c>: the OpenAI-compatible server with continuous batching. Ranks are threads of
/// this process, or — under <c>mpirun</c> — processes: rank 0 serves HTTP and plans each step, the
/// other ranks follow its plan.
/// </summary>
public static class ServeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var port = new Option<int>("--port", "-p") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 8000 };
        var host = new Option<string>("--host") { Description = "address to listen on (0.0.0.0 = every interface)", DefaultValueFactory = _ => "0.0.0.0" };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together (KV-cache slots)", DefaultValueFactory = _ => 16 };
        var name = new Option<string?>("--served-model-name") { Description = "model id clients use (default: the folder's name)" };
        var template = new Option<string?>("--chat-template") { Description = "Jinja chat template file to use instead of the model's" };
        var noPrefixCaching = new Option<bool>("--no-prefix-caching") { Description = "prefill every prompt whole (default: reuse a finished sequence's cached prefix)" };
        var maxPrefill = new Option<int>("--max-prefill-tokens")
        {
            Description = "chunked prefill: prompt tokens prefilled per step, between decode steps of the running sequences (0 = whole prompts)",
            DefaultValueFactory = _ => ContinuousBatcher.DefaultMaxPrefillTokens,
        };
        var cmd = new Command("serve", "serve the model over an OpenAI-compatible HTTP API with continuous batching") { port, host, maxBatch, name, template, noPrefixCaching, maxPrefill };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            if (r.GetValue(common.Head) != LmHeadStrategy.ColumnParallel)
                throw new TpLlmException("--head: serve always uses the column-parallel head (vocab-parallel sampling); drop --head");
            int p = r.GetValue(port);
            if (p is < 0 or > 65535) throw new TpLlmException($"--port {p} is outside [0, 65535]");
            int mb = r.GetValue(maxBatch);
            if (mb < 1) throw new TpLlmException($"--max-batch {mb} must be ≥ 1");
            int chunk = r.GetValue(maxPrefill);
            if (chunk < 0) throw new TpLlmException($"--max-prefill-tokens {chunk} must be ≥ 0 (0 = whole prompts)");
            var options = new EngineOptions
            {
                ModelPath = common.ModelPath(r), Tp = r.GetValue(common.Tp), MaxBatch = mb, Model = common.ModelOptions(r, mb),
                ModelId = r.GetValue(name), ChatTemplatePath = r.GetValue(template), PrefixCaching = !r.GetValue(noPrefixCaching),
                MaxPrefillTokens = chunk,
            };
            return MpiRuntime.LaunchedByMpirun ? ServeMpi(options, r.GetValue(host)!, p) : ServeThreads(options, r.GetValue(host)!, p);
        });
        return cmd;
    }

    private static int ServeThreads(EngineOptions options, string host, int port)
    {
        using var engine = InferenceEngine.StartAsync(options).GetAwaiter().GetResult();
        RunServer(engine, host, port, options.Tp);
        return 0;
    }

    // every process of the job: rank 0 serves and leads the batch, the others follow it
    private static int ServeMpi(EngineOptions options, string host, int port)
    {
        RankLauncher.Run(1, options.Tp, (group, _) =>
        {
            using var folder = ModelFolder.Open(options.ModelPath, requireTokenizer: group.Rank == 0);
            if (group.Rank != 0)
            {
                ContinuousBatcher.Follow(folder, group, options.MaxBatch, options.Model);
                return [];
            }
            var template = InferenceEngine.TemplateFor(options, folder.Path);
            using var batcher = ContinuousBatcher.Lead(folder, group, options.MaxBatch, options.Model);
            batcher.PrefixCaching = options.PrefixCaching;
            batcher.MaxPrefillTokens = options.MaxPrefillTokens;
            batcher.Ready.GetAwaiter().GetResult();
            using var engine = new InferenceEngine(folder, batcher, template, options.ModelId ?? InferenceEngine.DefaultModelId(folder.Path));
            RunServer(engine, host, port, options.Tp);
            return [];
        });
        return 0;
    }

    private static void RunServer(InferenceEngine engine, string host, int port, int tp)
    {
        var app = OpenAiServer.Build(engine, host, port);
        app.StartAsync().GetAwaiter().GetResult();
        var urls = string.Join(", ", app.Urls);
        StdOut.Err.WriteLine($"tpllm: serving '{engine.ModelId}' (tp={tp}, max batch {engine.Batcher.MaxBatch}, context {engine.MaxContext}, chat template: {engine.ChatTemplate.Origin}) on {urls}");
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
        ((IAsyncDisposable)app).DisposeAsync().AsTask().GetAwaiter().GetResult();
        StdOut.Err.WriteLine("tpllm: server stopped");
    }
}
