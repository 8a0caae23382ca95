using System.CommandLine;
using System.Text.Json;
using TpLlm.Quantization;

namespace TpLlm.Cli;

/// <summary>
/// <c>tpllm quantize</c>: writes a model folder's 4-bit GPTQ checkpoint (symmetric, groups of 32: the q4 format's
/// blocks), calibrated on a text as llama.cpp's <c>llama-imatrix</c> + <c>llama-quantize</c> are, or rounded to nearest
/// without one. The folder it writes loads with every command, at bf16's loading speed.
/// </summary>
public static class QuantizeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = new Option<string?>("--model", "-m") { Description = "the unquantized model: a Hugging Face safetensors folder or Hub id (default: the bundled models/fortune-llama)" };
        var output = new Option<string>("--output", "-o") { Description = "folder to write (must not exist, or be empty)", Required = true };
        var calibration = new Option<string?>("--calibration") { Description = "UTF-8 text whose activations GPTQ weighs each layer's rounding by (without: round to nearest, as --quantize q4)" };
        var context = new Option<int>("--context") { Description = "tokens per calibration window (0 = 512, capped at max_position_embeddings)", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "threads (0 = every core)", DefaultValueFactory = _ => 0 };
        var damp = new Option<double>("--damp") { Description = "added to each layer's input second moment's diagonal, as a fraction of its mean (GPTQ's damp_percent)", DefaultValueFactory = _ => 0.01 };
        var json = new Option<bool>("--json") { Description = "print what was written as JSON on stdout" };
        var cmd = new Command("quantize", "write a 4-bit GPTQ checkpoint of a model (groups of 32, the q4 format's blocks), calibrated with GPTQ on --calibration text") { model, output, calibration, context, threads, damp, json };
        cmd.SetAction(r =>
        {
            int window = r.GetValue(context), t = r.GetValue(threads);
            double d = r.GetValue(damp);
            if (window < 0) throw new TpLlmException($"--context {window} must be ≥ 0");
            if (t < 0) throw new TpLlmException($"--threads {t} must be ≥ 0");
            if (!(d > 0 && d < 1)) throw new TpLlmException($"--damp {d} must be in (0, 1)");
            var path = r.GetValue(model) is { } m ? ModelLocator.Resolve(m) : ModelLocator.DefaultModel();
            string? textPath = r.GetValue(calibration);
            using var folder = Models.ModelFolder.Open(path, requireTokenizer: textPath is not null); // no notes: a folder they would be about is refused
            window = WindowedText.Window(folder.Config, window);
            if (window > folder.Config.MaxPositionEmbeddings)
                throw new TpLlmException($"--context {window} exceeds the model's max_position_embeddings {folder.Config.MaxPositionEmbeddings}");
            int[] tokens = [];
            int bos = -1;
            var err = StdOut.Err;
            if (textPath is not null)
            {
                (tokens, bos) = WindowedText.Tokenize(folder.Tokenizer!, WindowedText.Read(textPath));
                if (tokens.Length < window)
                    throw new TpLlmException($"--calibration {textPath}: {tokens.Length} tokens, fewer than one window of --context {window}");
                err.WriteLine($"tpllm: {textPath}: {tokens.Length} tokens, {tokens.Length / window} calibration windows of {window}");
            }
            var outDir = r.GetValue(output)!;
            var report = ModelQuantizer.Quantize(folder, outDir, tokens, bos, new ModelQuantizer.Options(window, t, d), s => err.WriteLine($"tpllm: {s}"));
            if (r.GetValue(json))
                StdOut.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    output = outDir, method = tokens.Length > 0 ? "gptq" : "round-to-nearest", matrices = report.Matrices, copied = report.Copied,
                    calibration_tokens = report.CalibrationTokens, calibration_perplexity = double.IsNaN(report.CalibrationPerplexity) ? (double?)null : report.CalibrationPerplexity,
                    bytes = report.Bytes,
                }));
            else
                StdOut.Out.WriteLine($"wrote {outDir}: {report.Matrices} weights in 4-bit GPTQ ({(tokens.Length > 0 ? $"calibrated on {report.CalibrationTokens} tokens" : "rounded to nearest")}), {report.Copied} tensors copied, {report.Bytes / 1e6:F1} MB");
            return 0;
        });
        return cmd;
    }
}
