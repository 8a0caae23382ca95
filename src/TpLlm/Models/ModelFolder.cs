using TpLlm.Checkpoints;
using TpLlm.Tokenization;

namespace TpLlm.Models;

/// <summary>
/// A Hugging Face model folder opened for inference: config, checkpoint (mapped lazily) and,
/// when present, the tokenizer. Shared by all in-process ranks.
/// </summary>
public sealed class ModelFolder : IDisposable
{
    /// <summary>The folder.</summary>
    public string Path { get; }
    /// <summary>Architecture.</summary>
    public ModelConfig Config { get; }
    /// <summary>Weights.</summary>
    public Checkpoint Checkpoint { get; }
    /// <summary>Tokenizer, or null when the folder has no tokenizer.json.</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>Ids that may be sampled: min(config vocab, tokenizer vocab).</summary>
    public int SamplableVocab => Math.Min(Config.VocabSize, Tokenizer?.VocabSize ?? int.MaxValue);

    private ModelFolder(string path, ModelConfig config, Checkpoint checkpoint, HfTokenizer? tokenizer)
    {
        Path = path; Config = config; Checkpoint = checkpoint; Tokenizer = tokenizer;
    }

    /// <summary>Opens <paramref name="path"/>; the tokenizer is optional unless <paramref name="requireTokenizer"/>.</summary>
    public static ModelFolder Open(string path, bool requireTokenizer = false)
    {
        var config = ModelConfig.Load(path);
        var checkpoint = Checkpoint.Open(path);
        try
        {
            bool hasTokenizer = IO.InputFile.Exists(System.IO.Path.Combine(path, "tokenizer.json"));
            var tokenizer = hasTokenizer || requireTokenizer ? HfTokenizer.Load(path) : null;
            return new ModelFolder(path, config, checkpoint, tokenizer);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => Checkpoint.Dispose();
}
