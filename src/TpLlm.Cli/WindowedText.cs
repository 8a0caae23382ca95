using TpLlm.Models;
using TpLlm.Tokenization;

namespace TpLlm.Cli;

/// <summary>
/// A text read in windows of tokens, as llama.cpp's <c>llama-perplexity</c> and <c>llama-imatrix</c> read it: UTF-8,
/// tokenized without special tokens; a tokenizer that adds BOS gets one at each window's start. Shared by
/// <c>perplexity --text</c> and <c>quantize --calibration</c>.
/// </summary>
public static class WindowedText
{
    /// <summary>Largest text file read (tokenizing more would take minutes anyway).</summary>
    public const long MaxBytes = 256 << 20;

    /// <summary>The file's text.</summary>
    /// <exception cref="TpLlmException">Missing, not a regular file, or over <see cref="MaxBytes"/>.</exception>
    public static string Read(string path) =>
        System.Text.Encoding.UTF8.GetString(IO.InputFile.ReadAll(path, MaxBytes, m => new TpLlmException(m)));

    /// <summary>The text's tokens, and the token each window starts with (−1: none).</summary>
    public static (int[] Tokens, int Bos) Tokenize(HfTokenizer tokenizer, string text)
    {
        var before = tokenizer.SpecialTokensAround.Before;
        return (tokenizer.Encode(text, addSpecialTokens: false), before.Count > 0 ? before[0] : -1);
    }

    /// <summary>The window: <paramref name="requested"/>, or 0 for max_position_embeddings capped at 512.</summary>
    public static int Window(ModelConfig config, int requested) => requested > 0 ? requested : Math.Min(config.MaxPositionEmbeddings, 512);
}
