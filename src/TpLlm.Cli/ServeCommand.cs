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
        var name = new Option<string?>("--served-model-name") { Description = "model id clients use (default: the Hub id given to --model, else the folder's or file's name)" };
        var template = new Option<string?>("--chat-template") { Description = "Jinja chat template file to use instead of the model's" };
        var noPrefixCaching = new Option<bool>("--no-prefix-caching") { Description = "prefill every prompt whole (default: reuse a finished sequence's cached prefix)" };
        var maxPrefill = new Option<int>("--max-prefill-tokens")
        {
            Description = "chunked prefill: prompt tokens prefilled per step, between decode steps of the running sequences (0 = whole prompts)",
            DefaultValueFactory = _ => BatcherOptions.DefaultMaxPrefillTokens,
        };
        var cmd = new Command("serve", "serve the model over an OpenAI-compatible HTTP API with continuous batching") { port, host, maxBatch, name, template, noPrefixCaching, maxPrefill };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            int p = r.GetValue(port);
            if (p is < 0 or > 65535) throw new TpLlmException($"--port {p} is outside [0, 65535]");
            int mb = r.GetValue(maxBatch);
            string listen = r.GetValue(host)!;
            var address = ParseHost(listen);
            var options = new EngineOptions
            {
                ModelPath = common.ModelPath(r), Tp = r.GetValue(common.Tp), MaxBatch = mb, Model = common.ModelOptions(r, mb),
                ModelId = r.GetValue(name) ?? common.HubId(r), ChatTemplatePath = r.GetValue(template), PrefixCaching = !r.GetValue(noPrefixCaching),
                MaxPrefillTokens = r.GetValue(maxPrefill),
            };
            options.ModelOptionsForBatch(); // the batch's options checked once, before the port and the model
            // refuse a port that is taken before spending the time to load the model
            if (!MpiRuntime.LaunchedByMpirun || MpiRuntime.World.Rank == 0) CheckPortFree(address, listen, p);
            return MpiRuntime.LaunchedByMpirun ? ServeMpi(options, listen, p) : ServeThreads(options, listen, p);
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
            using var folder = ModelOpener.Open(options.ModelPath, requireTokenizer: group.Rank == 0);
            if (group.Rank != 0)
            {
                ContinuousBatcher.Follow(folder, group, options);
                return [];
            }
            var template = InferenceEngine.TemplateFor(options, folder);
            using var batcher = ContinuousBatcher.Lead(folder, group, options);
            batcher.Ready.GetAwaiter().GetResult();
            using var engine = new InferenceEngine(folder, batcher, template, options.ModelId ?? InferenceEngine.DefaultModelId(folder.Path));
            RunServer(engine, host, port, options.Tp);
            return [];
        });
        return 0;
    }

    /// <summary>
    /// The address <c>--host</c> names: an IPv4 or IPv6 address, <c>localhost</c>, or <c>*</c> (every interface). Kestrel
    /// would listen on every interface for anything else it cannot parse (a typo such as 999.1.1.1), so that is an error.
    /// </summary>
    public static System.Net.IPAddress ParseHost(string host)
    {
        if (host is "*") return System.Net.IPAddress.Any;
        if (host == "localhost") return System.Net.IPAddress.Loopback;
        bool dotted = host.Count(c => c == '.') == 3 || host.Contains(':'); // IPAddress.Parse takes "1" as 0.0.0.1
        if (dotted && System.Net.IPAddress.TryParse(host, out var address)) return address;
        throw new TpLlmException($"--host '{host}' is not an IP address: use 0.0.0.0 for every interface, 127.0.0.1 or localhost for this machine only, or one of its addresses");
    }

    private static void CheckPortFree(System.Net.IPAddress address, string host, int port)
    {
        if (port == 0) return;
        var probe = new System.Net.Sockets.TcpListener(address, port);
        try
        {
            probe.Start();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new TpLlmException($"--host {host} --port {port}: cannot listen there: {e.Message}{(e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse ? " (another server is on that port; choose another --port)" : "")}");
        }
        finally
        {
            probe.Stop();
        }
    }

    private static void RunServer(InferenceEngine engine, string host, int port, int tp)
    {
        var app = OpenAiServer.Build(engine, host, port);
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (IOException e)
        {
            throw new TpLlmException($"--host {host} --port {port}: cannot listen there: {e.Message}");
        }
        var urls = string.Join(", ", app.Urls);
        StdOut.Err.WriteLine($"tpllm: serving '{engine.ModelId}' (tp={tp}, max batch {engine.Batcher.MaxBatch}, context {engine.MaxContext}, chat template: {engine.ChatTemplate.Origin}) on {urls}");
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
        ((IAsyncDisposable)app).DisposeAsync().AsTask().GetAwaiter().GetResult();
        StdOut.Err.WriteLine("tpllm: server stopped");
    }
}
