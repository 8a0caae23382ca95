using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Cli;

/// <summary><c>tpllm generate</c>: continue prompts, streaming text to stdout.</summary>
public static class GenerateCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var prompts = new Argument<string[]>("prompt") { Description = "prompt text (several prompts run as one batch)", Arity = ArgumentArity.ZeroOrMore };
        var ids = new Option<string?>("--ids") { Description = "prompt as comma-separated token ids instead of text" };
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "new tokens at most", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => 0.8f };
        var greedy = new Option<bool>("--greedy") { Description = "pick the most likely token (temperature 0)" };
        var topK = new Option<int>("--top-k") { Description = "keep the k most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling mass in (0, 1] (1 = off)", DefaultValueFactory = _ => 1f };
        var minP = new Option<float>("--min-p") { Description = "drop tokens below min-p × the top probability (0 = off)", DefaultValueFactory = _ => 0f };
        var presence = new Option<float>("--presence-penalty") { Description = "subtract this from the logit of every token already in the output, in [-2, 2] (0 = off)", DefaultValueFactory = _ => 0f };
        var frequency = new Option<float>("--frequency-penalty") { Description = "subtract this per time a token is already in the output, in [-2, 2] (0 = off)", DefaultValueFactory = _ => 0f };
        var repetition = new Option<float>("--repetition-penalty") { Description = "divide positive (multiply negative) logits of prompt and output tokens by this, > 0 (1 = off)", DefaultValueFactory = _ => 1f };
        var minTokens = new Option<int>("--min-tokens") { Description = "generate at least this many tokens before end-of-sequence may be picked" };
        var logitBias = new Option<string?>("--logit-bias") { Description = "add a bias in [-100, 100] to token logits: id=bias,id=bias (-100 bans a token)" };
        var seed = new Option<ulong?>("--seed") { Description = "random seed (default: time-based)" };
        var json = new Option<bool>("--json") { Description = "print {\"tokens\":[...]} (new tokens only) instead of text" };
        var logprobs = new Option<int>("--logprobs") { Description = "report log-probabilities with this many top alternatives (with --json)", DefaultValueFactory = _ => -1 };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "keep generating after an end-of-sequence token" };
        var gather = new Option<bool>("--gather-logits") { Description = "gather full logits and sample on them (default: vocab-parallel sampling)" };
        var toRoot = new Option<bool>("--gather-to-root") { Description = "with --gather-logits: gather to rank 0 only, sample there, broadcast the tokens" };
        var format = new Option<string>("--response-format")
        {
            Description = "text, or json_object: the output is one JSON object (OpenAI's JSON mode; the prompt should ask for JSON)",
            DefaultValueFactory = _ => "text",
        };
        format.AcceptOnlyFromAmong("text", "json_object");
        var dp = new Option<int>("--dp") { Description = "data-parallel replicas (world = dp × tp ranks); prompts are spread over them", DefaultValueFactory = _ => 1 };
        var cmd = new Command("generate", "continue a prompt with the model, streaming to stdout") { prompts, ids, maxNew, temperature, greedy, topK, topP, minP, presence, frequency, repetition, logitBias, minTokens, seed, json, logprobs, ignoreEos, format, gather, toRoot, dp };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var texts = r.GetValue(prompts) ?? [];
            var idText = r.GetValue(ids);
            if (idText is not null && texts.Length > 0) throw new TpLlmException("give either prompt text or --ids, not both");
            if (idText is null && texts.Length == 0) throw new TpLlmException("no prompt: give prompt text or --ids 1,2,3");
            if (texts.Any(string.IsNullOrEmpty)) throw new TpLlmException("the prompt is empty; give some text");
            int lp = r.GetValue(logprobs);
            if (lp < -1 || lp > 20) throw new TpLlmException($"--logprobs {lp} is outside [0, 20]");
            var sampling = new SamplingParams
            {
                Temperature = r.GetValue(greedy) ? 0 : r.GetValue(temperature),
                TopK = r.GetValue(topK), TopP = r.GetValue(topP), MinP = r.GetValue(minP),
                PresencePenalty = r.GetValue(presence), FrequencyPenalty = r.GetValue(frequency), RepetitionPenalty = r.GetValue(repetition),
                LogitBias = CommonOptions.ParseBias(r.GetValue(logitBias)), MinTokens = r.GetValue(minTokens),
                Seed = r.GetValue(seed) ?? (ulong)Stopwatch.GetTimestamp(),
            }.Validate();
            int max = r.GetValue(maxNew);
            if (max < 1) throw new TpLlmException($"--max-new-tokens {max} must be ≥ 1");
            var responseFormat = r.GetValue(format) == "json_object" ? ResponseFormat.JsonObject : ResponseFormat.Text;
            return Run(r, common, texts, idText, sampling, max, lp, r.GetValue(json), r.GetValue(ignoreEos), responseFormat,
                r.GetValue(gather) || r.GetValue(toRoot), r.GetValue(toRoot), r.GetValue(dp));
        });
        return cmd;
    }

    private static int Run(ParseResult r, CommonOptions common, string[] texts, string? idText, SamplingParams sampling, int maxNew, int logprobs,
        bool json, bool ignoreEos, ResponseFormat responseFormat, bool gather, bool toRoot, int dp)
    {
        var path = common.ModelPath(r);
        int tp = r.GetValue(common.Tp);
        var sw = Stopwatch.StartNew();
        using var folder = ModelOpener.Open(path, requireTokenizer: idText is null);
        if (responseFormat != ResponseFormat.Text && folder.Tokenizer is null)
            throw new TpLlmException($"{path}: --response-format json_object needs the model's tokenizer.json to know each token's text");
        var promptIds = idText is not null ? [CommonOptions.ParseIds(idText)] : texts.Select(t => folder.Tokenizer!.Encode(t, addSpecialTokens: true)).ToArray();
        if (dp < 1) throw new TpLlmException($"--dp {dp} must be ≥ 1");
        var options = common.ModelOptions(r, Math.Max(1, (promptIds.Length + dp - 1) / dp));
        var requests = promptIds.Select((p, i) => new GenerationRequest
        {
            PromptIds = p, MaxNewTokens = maxNew, IgnoreEos = ignoreEos, WantLogprobs = logprobs >= 0, TopLogprobs = Math.Max(0, logprobs),
            Sampling = sampling with { Seed = sampling.Seed + (ulong)i }, ResponseFormat = responseFormat,
        }).ToArray();
        bool stream = !json && requests.Length == 1 && folder.Tokenizer is not null;
        var eos = folder.Config.EosTokenIds.ToHashSet();
        var decoder = folder.Tokenizer?.NewStreamingDecoder(skipSpecialTokens: true); // like vLLM: <|endoftext|> under --ignore-eos is no text
        using var cancel = new CancelOnCtrlC();
        var stdout = StdOut.Out;
        double loadSeconds = 0;
        GenerationStats stats = default;
        var payloads = RankLauncher.Run(dp, tp, (comm, replica) =>
        {
            var mine = Enumerable.Range(0, requests.Length).Where(i => i % dp == replica).ToArray();
            using var model = DecoderModel.Load(folder.Config, FaultInjection.Wrap(folder.Checkpoint, comm.Rank), comm, options);
            bool lead = comm.Rank == 0 && replica == 0;
            if (lead)
            {
                loadSeconds = sw.Elapsed.TotalSeconds;
                StdOut.Err.WriteLine($"tpllm: loaded {path} (dp={dp}, tp={tp}, {model.Plan.Vocab}) in {loadSeconds:F2} s");
            }
            comm.Barrier();
            if (mine.Length == 0) return ResultCodec.Encode([]);
            var generator = new Generator(model, folder.SamplableVocab, folder.Config.EosTokenIds)
            {
                GatherLogits = gather,
                GatherToRoot = toRoot,
                TokenBytes = folder.Tokenizer?.TextTokenBytes,
                IsCancelled = () => cancel.Requested,
                OnToken = lead && stream ? (_, tok, _) =>
                {
                    if (!ignoreEos && eos.Contains(tok)) return; // like vLLM, the end-of-sequence token is not printed as text
                    stdout.Write(decoder!.Add(tok));
                    stdout.Flush();
                } : null,
            };
            var res = generator.Generate(mine.Select(i => requests[i]).ToArray());
            if (lead) stats = generator.LastStats;
            return ResultCodec.Encode(mine.Select((i, k) => (i, res[k])).ToArray());
        });
        if (payloads is null) return 0; // not world rank 0: rank 0 reports
        var results = new GenerationResult[requests.Length];
        foreach (var p in payloads)
            foreach (var (i, res) in ResultCodec.Decode(p)) results[i] = res;
        if (stream) stdout.WriteLine(decoder!.Flush());
        else if (json) stdout.WriteLine(Json(results, logprobs >= 0));
        else if (folder.Tokenizer is not { } tok)
        {
            // without tokenizer.json there is no text: the new ids, in --ids' form
            StdOut.Err.WriteLine($"tpllm: {path} has no tokenizer.json; printing the new token ids");
            foreach (var res in results) stdout.WriteLine(string.Join(",", res.Tokens));
        }
        else
            for (int i = 0; i < results.Length; i++)
                stdout.WriteLine($"--- [{i}] {(i < texts.Length ? texts[i] : tok.Decode(promptIds[i]))}"
                    + tok.Decode(results[i].Tokens.Where(t => ignoreEos || !eos.Contains(t)), skipSpecialTokens: true));
        int total = results.Sum(x => x.Tokens.Length);
        StdOut.Err.WriteLine($"tpllm: {total} tokens; {stats}; stopped: {string.Join(", ", results.Select(x => Describe(x.Reason)))}");
        return 0;
    }

    private static string Describe(FinishReason reason) => reason switch
    {
        FinishReason.Eos => "end-of-sequence token",
        FinishReason.MaxTokens => "max new tokens",
        FinishReason.ContextFull => "context full",
        _ => "cancelled (Ctrl-C)",
    };

    private static string Json(GenerationResult[] results, bool logprobs)
    {
        object One(GenerationResult x) => logprobs
            ? new
            {
                tokens = x.Tokens,
                finish_reason = x.Reason.ToString(),
                logprobs = x.Logprobs!.Select(l => new { token = l.Id, logprob = l.Logprob, top = l.Top.Select(t => new { token = t.Id, logprob = t.Logprob }) }),
            }
            : new { tokens = x.Tokens, finish_reason = x.Reason.ToString() };
        return results.Length == 1 ? JsonSerializer.Serialize(One(results[0])) : JsonSerializer.Serialize(new { results = results.Select(One) });
    }
}
