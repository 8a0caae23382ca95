using System.Text.Json;

namespace TpLlm.Checkpoints.Gptq;

/// <summary>
/// A GPTQ checkpoint's <c>quantization_config</c> (transformers' <c>GPTQConfig</c>, as AutoGPTQ, GPTQModel and
/// <c>tpllm quantize</c> write it), limited to what maps exactly onto the q4 format's blocks: 4 bits, symmetric, group
/// size a multiple of 32 (or −1, one group per row). Groups out of column order (act-order, <c>desc_act</c>) are read too,
/// widened to bf16 (see <see cref="GptqTensor"/>).
/// </summary>
/// <param name="GroupSize">Weights per scale along K (a multiple of 32), or −1 for one scale per row.</param>
/// <param name="ZerosMinusOne">The zero points are stored less one (<c>checkpoint_format</c> "gptq", AutoGPTQ's original layout) rather than as they are ("gptq_v2").</param>
/// <param name="DescAct">Columns were quantized in act-order, so their groups (<c>g_idx</c>) need not follow the columns.</param>
public sealed record GptqConfig(int GroupSize, bool ZerosMinusOne, bool DescAct = false)
{
    /// <summary>The <c>quant_method</c> value.</summary>
    public const string Method = "gptq";

    /// <summary>The quantization config of the folder's <c>config.json</c> when its <c>quant_method</c> is "gptq", else null.</summary>
    /// <exception cref="CheckpointException">A GPTQ config TpLlm cannot load: the field and value named.</exception>
    public static GptqConfig? Read(string folder)
    {
        var path = Path.Combine(folder, "config.json");
        if (!IO.InputFile.Exists(path)) return null;
        return JsonInput.ReadFile(path, JsonInput.MaxConfigBytes, 64, root =>
            root.ValueKind == JsonValueKind.Object && root.TryGetProperty("quantization_config", out var q) && q.ValueKind == JsonValueKind.Object
            && q.TryGetProperty("quant_method", out var m) && m.ValueKind == JsonValueKind.String && m.GetString() == Method
                ? Parse(path, q) : null, (msg, e) => new CheckpointException(msg, e));
    }

    private static GptqConfig Parse(string path, JsonElement q)
    {
        string where = $"{path}: quantization_config";
        int bits = Int(q, "bits", 4);
        if (bits != 4) throw new CheckpointException($"{where}.bits is {bits}; TpLlm loads 4-bit GPTQ checkpoints (their blocks are the q4 format's)");
        int group = Int(q, "group_size", 128);
        if (group != -1 && (group <= 0 || group % 32 != 0))
            throw new CheckpointException($"{where}.group_size is {group}; TpLlm loads groups of a multiple of 32 weights, or −1");
        if (q.TryGetProperty("sym", out var sym) && sym.ValueKind == JsonValueKind.False)
            throw new CheckpointException($"{where}.sym is false; TpLlm loads symmetric GPTQ checkpoints (zero point 8, as Q4_0), not asymmetric ones");
        string format = q.TryGetProperty("checkpoint_format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : "gptq";
        if (format is not ("gptq" or "gptq_v2"))
            throw new CheckpointException($"{where}.checkpoint_format is '{format}'; TpLlm reads 'gptq' and 'gptq_v2'");
        return new GptqConfig(group, format == "gptq", q.TryGetProperty("desc_act", out var act) && act.ValueKind == JsonValueKind.True);
    }

    private static int Int(JsonElement q, string name, int fallback) =>
        !q.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
        : throw new CheckpointException($"quantization_config.{name} is {v.GetRawText()}, expected an integer");
}
