using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gguf;
using TpLlm.Checkpoints.Gptq;
using TpLlm.Tokenization;

namespace TpLlm.Models;

/// <summary>
/// A model opened for inference: config, weights (mapped lazily) and, when present, the tokenizer — from a Hugging Face
/// folder (config.json, safetensors, tokenizer.json) or a GGUF file (all three from the one file). Shared by all
/// in-process ranks.
/// </summary>
public sealed class ModelFolder : IDisposable
{
    /// <summary>The folder or file.</summary>
    public string Path { get; }
    /// <summary>Architecture.</summary>
    public ModelConfig Config { get; }
    /// <summary>Weights.</summary>
    public IWeightSource Checkpoint { get; }
    /// <summary>What users should know about how the model was read (a quantized head widened to bf16), one line each.</summary>
    public IReadOnlyList<string> Notes { get; private init; } = [];
    /// <summary>Tokenizer, or null when the folder has no tokenizer.json.</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>Ids that may be sampled: min(config vocab, tokenizer vocab).</summary>
    public int SamplableVocab => Math.Min(Config.VocabSize, Tokenizer?.VocabSize ?? int.MaxValue);

    private ModelFolder(string path, ModelConfig config, IWeightSource checkpoint, HfTokenizer? tokenizer)
    {
        Path = path; Config = config; Checkpoint = checkpoint; Tokenizer = tokenizer;
    }

    /// <summary>Opens <paramref name="path"/>, a folder or a GGUF file; the tokenizer is optional unless <paramref name="requireTokenizer"/>.</summary>
    public static ModelFolder Open(string path, bool requireTokenizer = false)
    {
        if (GgufFile.IsGguf(path)) return OpenGguf(path, requireTokenizer);
        if (File.Exists(path)) throw new CheckpointException($"{path}: not a model folder or a GGUF file (it does not start with the GGUF magic)");
        var config = ModelConfig.Load(path);
        IWeightSource checkpoint = Checkpoints.Checkpoint.Open(path);
        try
        {
            string[] notes = [];
            if (GptqConfig.Read(path) is { } gptq)
            {
                checkpoint = new GptqCheckpoint((Checkpoints.Checkpoint)checkpoint, gptq);
                string groups = gptq.GroupSize == -1 ? "a whole row" : gptq.GroupSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
                notes = [gptq.DescAct
                    ? $"{path}: 4-bit GPTQ checkpoint, groups of {groups} in act-order (desc_act): layers whose groups do not follow the columns are widened to bf16 (--quantize int8 keeps them at 8 bits)"
                    : $"{path}: 4-bit GPTQ checkpoint, groups of {groups}: its layers load as the q4 format's blocks"];
            }
            bool hasTokenizer = IO.InputFile.Exists(System.IO.Path.Combine(path, "tokenizer.json"));
            var tokenizer = hasTokenizer || requireTokenizer ? HfTokenizer.Load(path) : null;
            return new ModelFolder(path, config, checkpoint, tokenizer) { Notes = notes };
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private static ModelFolder OpenGguf(string path, bool requireTokenizer)
    {
        var file = new GgufFile(path);
        try
        {
            string arch = GgufDescription.Architecture(file);
            var config = ModelConfig.Parse(GgufDescription.MetadataName(file), GgufDescription.ConfigJson(file));
            if (file.TryGet("rope_freqs.weight", out _)) config = WithFrequencyFactors(config, file);
            var checkpoint = new GgufCheckpoint(file, permutedQk: arch == "llama", config.NumHeads, config.NumKvHeads);
            HfTokenizer? tokenizer = null;
            var notes = new List<string>();
            try
            {
                tokenizer = HfTokenizer.Parse(GgufDescription.MetadataName(file), GgufDescription.TokenizerJson(file));
            }
            catch (TpLlmException e) when (!requireTokenizer)
            {
                notes.Add($"no tokenizer: {e.Message}");
            }
            foreach (var name in new[] { Parallel.LmHeadLoader.EmbeddingName, Parallel.LmHeadLoader.HeadName })
                if (checkpoint.Info(name) is { } t && GgmlType.ToDType(t.Type) is { } dt && dt.BlockElements() > 1)
                    notes.Add($"{t.Name} is {t.TypeName}: widened to bf16, since the LM head and the embeddings are never quantized");
            var widened = file.Tensors.Values.Where(t => t.Name.StartsWith("blk.", StringComparison.Ordinal) && GgmlType.ToDType(t.Type) is DType.Q4_K or DType.Q5_K or DType.Q6_K)
                .GroupBy(t => t.TypeName).Select(g => $"{g.Count()} {g.Key}").ToArray();
            if (widened.Length > 0)
                notes.Add($"{string.Join(" and ", widened)} decoder tensors widened to bf16 (no kernels for K-quants; --quantize q4 or int8 requantizes them)");
            return new ModelFolder(path, config, checkpoint, tokenizer) { Notes = notes };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    // a Llama 3 GGUF stores its RoPE frequency scaling as divisors of the inverse frequencies (rope_freqs.weight)
    private static ModelConfig WithFrequencyFactors(ModelConfig config, GgufFile file)
    {
        var info = file.Tensors["rope_freqs.weight"];
        int pairs = config.HeadDim / 2;
        if (info.Type != GgmlType.F32 || info.Dims.Length != 1 || info.Dims[0] != pairs)
            throw new CheckpointException($"{file.Path}: tensor 'rope_freqs.weight' is {info.TypeName} [{string.Join(", ", info.Dims)}], expected F32 [{pairs}] (head_dim / 2)");
        var bytes = file.Bytes(info, 0, pairs * 4);
        var factors = new double[pairs];
        for (int i = 0; i < pairs; i++) factors[i] = BitConverter.ToSingle(bytes.Slice(4 * i, 4));
        RopeParameters Scaled(RopeParameters r) => r with { FrequencyFactors = factors };
        return config with { Rope = Scaled(config.Rope), Layers = [.. config.Layers.Select(l => l with { Rope = Scaled(l.Rope) })] };
    }

    /// <inheritdoc />
    public void Dispose() => Checkpoint.Dispose();
}
