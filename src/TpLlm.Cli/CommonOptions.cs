using System.CommandLine;
using TpLlm.Models;
using TpLlm.Parallel;

namespace TpLlm.Cli;

/// <summary>Options shared by the commands that load a model.</summary>
public sealed class CommonOptions
{
    /// <summary>--model.</summary>
    public Option<string?> Model { get; } = new("--model", "-m") { Description = "a Hugging Face model folder, a GGUF file, or a Hub id org/name[@revision] (downloaded into the huggingface_hub cache; default: the bundled models/fortune-llama)" };
    /// <summary>--tp.</summary>
    public Option<int> Tp { get; } = new("--tp") { Description = "tensor-parallel ranks (threads in this process), 1 to the number of attention heads", DefaultValueFactory = _ => 1 };
    /// <summary>--align.</summary>
    public Option<int> Align { get; } = new("--align") { Description = "vocab padding alignment: V_pad = roundUp(V, tp·align)", DefaultValueFactory = _ => 1 };
    /// <summary>--head.</summary>
    public Option<LmHeadStrategy> Head { get; } = new("--head") { Description = "LM head split: ColumnParallel (vocab) or RowParallel (hidden)", DefaultValueFactory = _ => LmHeadStrategy.ColumnParallel };
    /// <summary>--quantize.</summary>
    public Option<string> Quantize { get; } = new("--quantize") { Description = "quantize the decoder's linear layers while loading: none, int8 or q4 (one f16 scale per 32 weights; the LM head and embeddings never are)", DefaultValueFactory = _ => "none" };
    /// <summary>--threads.</summary>
    public Option<int> Threads { get; } = new("--threads") { Description = "kernel threads per rank (0 = cores / tp)", DefaultValueFactory = _ => 0 };
    /// <summary>--context.</summary>
    public Option<int> Context { get; } = new("--context") { Description = "context length per sequence (0 = max_position_embeddings, capped at 4096)", DefaultValueFactory = _ => 0 };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Model, Tp, Align, Head, Quantize, Threads, Context }) command.Options.Add(o);
    }

    /// <summary>The Hub id --model gives, or null when it names a folder or file (the default id a server answers to).</summary>
    public string? HubId(ParseResult r) => r.GetValue(Model) is { } m && ModelLocator.IsHubId(m) ? m : null;

    /// <summary>The model's folder or file: --model resolved (a Hub id downloaded), or the bundled default.</summary>
    public string ModelPath(ParseResult r) => r.GetValue(Model) is { } m ? ModelLocator.Resolve(m) : ModelLocator.DefaultModel();

    /// <summary>Builds and validates the model options.</summary>
    public ModelOptions ModelOptions(ParseResult r, int maxSequences)
    {
        int tp = r.GetValue(Tp);
        if (tp < 1) throw new TpLlmException($"--tp {tp} must be ≥ 1");
        int align = r.GetValue(Align);
        if (align < 1) throw new TpLlmException($"--align {align} must be ≥ 1");
        var quantization = QuantizationOf(r);
        int threads = r.GetValue(Threads);
        if (threads < 0) throw new TpLlmException($"--threads {threads} must be ≥ 0");
        int context = r.GetValue(Context);
        if (context < 0) throw new TpLlmException($"--context {context} must be ≥ 0");
        return new ModelOptions
        {
            VocabAlign = align, Quantization = quantization, HeadStrategy = r.GetValue(Head), MaxSequences = maxSequences,
            ComputeThreads = threads, MaxContext = context,
        };
    }

    /// <summary>The format <c>--quantize</c> names (null: none).</summary>
    public Tensors.IWeightFormat? QuantizationOf(ParseResult r) => Tensors.WeightFormats.ForQuantize(r.GetValue(Quantize)!);

    /// <summary>Parses <c>--logit-bias</c>: comma-separated <c>id=bias</c> pairs (null when absent).</summary>
    public static Dictionary<int, float>? ParseBias(string? text)
    {
        if (text is null) return null;
        var bias = new Dictionary<int, float>();
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = pair.Split('=', StringSplitOptions.TrimEntries);
            if (kv.Length != 2 || !int.TryParse(kv[0], System.Globalization.CultureInfo.InvariantCulture, out int id)
                || !float.TryParse(kv[1], System.Globalization.CultureInfo.InvariantCulture, out float b))
                throw new TpLlmException($"--logit-bias: '{pair}' is not id=bias (e.g. 50256=-100)");
            bias[id] = b;
        }
        return bias;
    }

    /// <summary>Parses "1,2,3" into ids.</summary>
    public static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new TpLlmException("--ids is empty; give comma-separated token ids like 1,2,3");
        return parts.Select(p => int.TryParse(p, out int v) && v >= 0 ? v : throw new TpLlmException($"--ids: '{p}' is not a non-negative token id")).ToArray();
    }
}
