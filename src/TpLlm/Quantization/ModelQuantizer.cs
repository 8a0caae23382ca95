using System.Text.Json.Nodes;
using TpLlm.Checkpoints;
using TpLlm.Checkpoints.Gptq;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Tensors;

namespace TpLlm.Quantization;

/// <summary>
/// Writes a model folder's 4-bit GPTQ checkpoint (<c>tpllm quantize</c>): each decoder linear layer's weight becomes
/// GPTQ's <c>qweight</c>/<c>scales</c>/<c>qzeros</c>/<c>g_idx</c> (symmetric, groups of 32 — the q4 format's own blocks, so
/// the folder loads without quantizing); embeddings, norms and the LM head are copied as they are. With calibration
/// tokens each layer's levels are chosen by GPTQ against the second moment of its inputs over that text, collected in
/// one pass of the unquantized model (every layer's from the same pass); without, each group is rounded to nearest
/// after the scale search <c>--quantize q4</c> makes while loading.
/// </summary>
public static class ModelQuantizer
{
    private static readonly string[] Linears =
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    /// <summary>How to quantize.</summary>
    /// <param name="Context">Tokens per calibration window (as <c>perplexity --context</c>).</param>
    /// <param name="Threads">Threads for the pass and the solves (0: every core).</param>
    /// <param name="Damp">Added to each second moment's diagonal, as a fraction of its mean (GPTQ's <c>damp_percent</c>).</param>
    public sealed record Options(int Context = 512, int Threads = 0, double Damp = 0.01);

    /// <summary>What was written.</summary>
    /// <param name="Matrices">Weights quantized.</param>
    /// <param name="Copied">Tensors copied as they were.</param>
    /// <param name="CalibrationTokens">Tokens the calibration pass ran (0: rounded to nearest).</param>
    /// <param name="CalibrationPerplexity">The unquantized model's perplexity over the calibration windows (NaN without).</param>
    /// <param name="Bytes">Size of the written weights file.</param>
    public readonly record struct Report(int Matrices, int Copied, int CalibrationTokens, double CalibrationPerplexity, long Bytes);

    /// <summary>Quantizes <paramref name="folder"/> into the new folder <paramref name="output"/>.</summary>
    /// <param name="folder">An unquantized safetensors model folder.</param>
    /// <param name="output">The folder to write (absent or empty).</param>
    /// <param name="calibration">Calibration text's tokens (empty: round to nearest).</param>
    /// <param name="bos">Token put at each window's start (−1: none), as perplexity does.</param>
    /// <param name="options">Window, threads, damping.</param>
    /// <param name="progress">Told of each window and each weight done.</param>
    /// <exception cref="TpLlmException">The folder cannot be quantized (named and why), or the output exists.</exception>
    public static Report Quantize(ModelFolder folder, string output, ReadOnlySpan<int> calibration, int bos, Options options, Action<string>? progress = null)
    {
        if (folder.Config.HasQuantizationConfig)
            throw new TpLlmException($"{folder.Path}/config.json has a quantization_config: the model is quantized already");
        if (folder.Checkpoint is not Checkpoint source)
            throw new TpLlmException($"{folder.Path}: quantize reads an unquantized safetensors model folder, not a GGUF file or a quantized checkpoint");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new TpLlmException($"{output}: the output folder exists and is not empty");
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        var c = folder.Config;
        var modules = new Dictionary<string, (int Layer, string Input)>(StringComparer.Ordinal);
        for (int l = 0; l < c.NumLayers; l++)
            foreach (var lin in Linears)
            {
                string name = $"model.layers.{l}.{lin}.weight";
                var t = source.Tensor(name);
                if (t.Shape.Length != 2 || t.Shape[1] % Gptq.Group != 0 || t.Shape[0] % 8 != 0)
                    throw new TpLlmException($"{t.Where} has shape {t.ShapeText}: 4-bit GPTQ packs weights of whole groups of {Gptq.Group} inputs and outputs in eights");
                if (!t.DType.IsWeightType() || t.DType.BlockElements() > 1)
                    throw new TpLlmException($"{t.Where} is {t.DType}; quantize reads BF16, F16 or F32 weights");
                modules[name] = (l, lin switch { "self_attn.o_proj" => "o", "mlp.gate_proj" or "mlp.up_proj" => "gate_up", "mlp.down_proj" => "down", _ => "qkv" });
            }

        var hessians = new Dictionary<(int, string), float[]>();
        double ppl = double.NaN;
        if (calibration.Length > 0) ppl = Calibrate(folder, calibration, bos, options.Context, threads, hessians, progress);

        Directory.CreateDirectory(output);
        var entries = new List<SafetensorsWriter.Entry>();
        int copied = 0, done = 0;
        foreach (var name in source.TensorNames.Order(StringComparer.Ordinal))
        {
            if (modules.TryGetValue(name, out var m))
            {
                var h = hessians.GetValueOrDefault((m.Layer, m.Input));
                entries.AddRange(QuantizedEntries(source.Tensor(name), h, options.Damp, threads, () => progress?.Invoke($"quantized {++done}/{modules.Count}: {name}")));
            }
            else
            {
                entries.Add(Copy(source.Tensor(name)));
                copied++;
            }
        }
        var weights = Path.Combine(output, Checkpoint.SingleFileName);
        SafetensorsWriter.Write(weights, entries, new Dictionary<string, string> { ["format"] = "pt", ["quantized_by"] = "tpllm quantize" });
        WriteConfig(folder.Path, output, options.Damp);
        foreach (var file in Directory.EnumerateFiles(folder.Path))
        {
            string fileName = Path.GetFileName(file);
            if (fileName == "config.json" || fileName == Checkpoint.IndexFileName || fileName.EndsWith(".safetensors", StringComparison.Ordinal)) continue;
            File.Copy(file, Path.Combine(output, fileName));
        }
        return new Report(modules.Count, copied, calibration.Length / options.Context * options.Context, ppl, new FileInfo(weights).Length);
    }

    // one pass of the unquantized model over the windows, summing XᵀX of every linear layer's input
    private static double Calibrate(ModelFolder folder, ReadOnlySpan<int> tokens, int bos, int context, int threads,
        Dictionary<(int, string), float[]> hessians, Action<string>? progress)
    {
        var comm = new SingleRankCommunicator();
        using var model = DecoderModel.Load(folder.Config, folder.Checkpoint, comm, new ModelOptions { MaxContext = context, ComputeThreads = threads });
        using var collector = new HessianCollector(threads);
        var watched = new List<((int, string) Key, WeightMatrix Weight)>();
        for (int l = 0; l < model.Layers.Count; l++)
        {
            var layer = model.Layers[l];
            watched.Add(((l, "qkv"), layer.Attention.Qkv.Weight));
            watched.Add(((l, "o"), layer.Attention.O.Weight));
            watched.Add(((l, "gate_up"), layer.Mlp.GateUp.Weight));
            watched.Add(((l, "down"), layer.Mlp.Down.Weight));
        }
        foreach (var (_, w) in watched) collector.Watch(w);
        model.MatMul.Observer = collector;
        var result = Perplexity.Evaluate(model, folder.SamplableVocab, tokens, context, bos,
            (w, n, p) => progress?.Invoke($"calibration window {w}/{n}: perplexity so far {p:F4}"));
        model.MatMul.Observer = null;
        foreach (var (key, w) in watched) hessians[key] = collector.Of(w).XtX;
        return result.Value;
    }

    // qweight [K/8, N], scales [K/32, N], qzeros [K/32, N/8], g_idx [K]: GPTQ runs when the first is written
    private static IEnumerable<SafetensorsWriter.Entry> QuantizedEntries(SourceTensor t, float[]? hessian, double damp, int threads, Action done)
    {
        int N = (int)t.Shape[0], K = (int)t.Shape[1], G = K / Gptq.Group;
        string module = t.Name[..^".weight".Length];
        sbyte[]? levels = null;
        ushort[]? scales = null;
        yield return new(module + ".qweight", DType.I32, [K / 8, N], s =>
        {
            var w = new float[(long)N * K];
            for (int r = 0; r < N; r++) ElementConvert.ToF32(t.DType, t.Row(r, 0, K), w.AsSpan(r * K, K), t.Where);
            t.Release();
            levels = new sbyte[(long)N * K];
            scales = new ushort[(long)N * G];
            Gptq.QuantizeQ4(w, N, K, hessian, levels, scales, damp, threads);
            var row = new byte[4 * N];
            for (int i = 0; i < K / 8; i++)
            {
                for (int n = 0; n < N; n++)
                {
                    uint packed = 0;
                    for (int j = 0; j < 8; j++) packed |= (uint)(levels[(long)n * K + 8 * i + j] + 8) << (4 * j);
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(row.AsSpan(4 * n), packed);
                }
                s.Write(row);
            }
            done();
        });
        yield return new(module + ".scales", DType.F16, [G, N], s =>
        {
            var row = new byte[2 * N];
            for (int g = 0; g < G; g++)
            {
                for (int n = 0; n < N; n++) System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(row.AsSpan(2 * n), scales![(long)n * G + g]);
                s.Write(row);
            }
            (levels, scales) = (null, null);
        });
        yield return new(module + ".qzeros", DType.I32, [G, N / 8], s =>
        {
            var row = new byte[4 * (N / 8)];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(row, 0x7777_7777); // zero point 8, stored less one
            for (int i = 4; i < row.Length; i++) row[i] = row[i - 4];
            for (int g = 0; g < G; g++) s.Write(row);
        });
        yield return new(module + ".g_idx", DType.I32, [K], s =>
        {
            var b = new byte[4];
            for (int k = 0; k < K; k++)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(b, k / Gptq.Group);
                s.Write(b);
            }
        });
    }

    private static SafetensorsWriter.Entry Copy(SourceTensor t)
    {
        if (t.Shape.Length is not (1 or 2) || t.DType.SafetensorsName() is null)
            throw new TpLlmException($"{t.Where} is {t.DType} {t.ShapeText}; quantize copies 1-D and 2-D tensors of safetensors types");
        long rows = t.Shape.Length == 1 ? 1 : t.Shape[0];
        int cols = (int)t.Shape[^1];
        return new(t.Name, t.DType, t.Shape, s =>
        {
            for (long r = 0; r < rows; r++) s.Write(t.Row(r, 0, cols));
            t.Release();
        });
    }

    // config.json as it was, with the quantization config transformers' GPTQConfig reads
    private static void WriteConfig(string input, string output, double damp)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(input, "config.json")))!.AsObject();
        config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = GptqConfig.Method,
            ["bits"] = 4,
            ["group_size"] = Gptq.Group,
            ["sym"] = true,
            ["desc_act"] = false,
            ["damp_percent"] = damp,
            ["true_sequential"] = false,
            ["checkpoint_format"] = "gptq",
        };
        File.WriteAllText(Path.Combine(output, "config.json"), config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
