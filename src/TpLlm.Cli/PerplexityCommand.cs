using System.CommandLine;
using System.Text.Json;
using TpLlm.Models;

namespace TpLlm.Cli;

/// <summary><c>tpllm perplexity</c>: perplexity of a text file, computed as llama.cpp's <c>llama-perplexity</c> computes it.</summary>
public static class PerplexityCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var text = new Option<string>("--text") { Description = "UTF-8 text file to score", Required = true };
        var json = new Option<bool>("--json") { Description = "print {\"perplexity\": …, \"tokens\": …, \"mean_nll\": …} on stdout" };
        var cmd = new Command("perplexity", "perplexity of a text: non-overlapping windows of --context tokens, each scoring its second half (as llama-perplexity)") { text, json };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var path = common.ModelPath(r);
            var file = r.GetValue(text)!;
            var content = WindowedText.Read(file);
            using var folder = ModelOpener.Open(path, requireTokenizer: true);
            var (tokens, bos) = WindowedText.Tokenize(folder.Tokenizer!, content);
            var options = common.ModelOptions(r, 1);
            int context = WindowedText.Window(folder.Config, options.MaxContext);
            options = options with { MaxContext = context };
            var err = StdOut.Err;
            err.WriteLine($"tpllm: {file}: {tokens.Length} tokens, {tokens.Length / context} windows of {context}");
            double[] result = [];
            RankLauncher.Run(1, r.GetValue(common.Tp), (comm, _) =>
            {
                using var model = DecoderModel.Load(folder.Config, FaultInjection.Wrap(folder.Checkpoint, comm.Rank), comm, options);
                bool lead = comm.Rank == 0;
                var res = Perplexity.Evaluate(model, folder.SamplableVocab, tokens, context, bos,
                    lead ? (w, n, ppl) => err.WriteLine($"tpllm: window {w}/{n}: perplexity so far {ppl:F4}") : null);
                if (lead) result = [res.Value, res.Tokens, res.MeanNll];
                return [];
            });
            if (!RankLauncher.IsRoot) return 0;
            if (r.GetValue(json))
                StdOut.Out.WriteLine(JsonSerializer.Serialize(new { perplexity = result[0], tokens = (int)result[1], mean_nll = result[2] }));
            else StdOut.Out.WriteLine($"perplexity {result[0]:F4} over {(int)result[1]} tokens (mean NLL {result[2]:F5})");
            return 0;
        });
        return cmd;
    }
}
