using TpLlm.Checkpoints;
using TpLlm.Tensors.Formats.Bf16;
using TpLlm.Tensors.Formats.F32;
using TpLlm.Tensors.Formats.Int8;
using TpLlm.Tensors.Formats.Q4;

namespace TpLlm.Tensors;

/// <summary>
/// The weight formats: the one registration of each. <see cref="Native"/> keeps a checkpoint's precision (bf16 as
/// stored, F16/F32 widened to f32); the quantized ones are chosen with <c>--quantize</c>.
/// </summary>
public static class WeightFormats
{
    /// <summary>Formats <c>--quantize</c> names, by name.</summary>
    public static IReadOnlyList<IWeightFormat> Quantized { get; } = [Int8Format.Instance, Q4Format.Instance];

    /// <summary>
    /// The checkpoint's own precision: bf16 rows as bf16, F16 and F32 rows as f32, GGUF's Q8_0 and Q4_0 blocks as int8 and
    /// q4; GGUF's K-quants, for which there are no kernels, widened to bf16.
    /// </summary>
    public static IWeightFormat Native { get; } = new NativeFormat();

    /// <summary>
    /// For the LM head and the embeddings, which are never quantized: bf16 rows as bf16, F16 and F32 as f32, and
    /// block-quantized rows (a GGUF file's quantized <c>output.weight</c> or <c>token_embd.weight</c>) widened to bf16.
    /// </summary>
    public static IWeightFormat Unquantized { get; } = new UnquantizedFormat();

    /// <summary>The names <c>--quantize</c> takes: none and each quantized format's.</summary>
    public static IReadOnlyList<string> QuantizeNames { get; } = ["none", .. Quantized.Select(f => f.Name)];

    /// <summary>The format <c>--quantize <paramref name="name"/></c> selects: null for none (the checkpoint's precision).</summary>
    public static IWeightFormat? ForQuantize(string name) =>
        name == "none" ? null
        : Quantized.FirstOrDefault(f => f.Name == name)
          ?? throw new InvalidRequestException("quantize", $"{{field}} '{name}' is not supported (allowed: {string.Join(", ", QuantizeNames)})");

    // bf16 stays bf16, blocks stay blocks; anything else would round, so it is widened
    private sealed class NativeFormat : IWeightFormat
    {
        public string Name => "none";
        public int GroupSize => 1;
        public bool IsQuantized => false;
        public WeightMatrix Create(int rows, int cols, DType source) => source switch
        {
            DType.BF16 => Bf16Format.Instance.Create(rows, cols, source),
            DType.Q8_0 => Int8Format.Instance.Create(rows, cols, source),
            DType.Q4_0 => Q4Format.Instance.Create(rows, cols, source),
            DType.Q4_K or DType.Q5_K or DType.Q6_K => Bf16Format.Instance.Create(rows, cols, source),
            _ => F32Format.Instance.Create(rows, cols, source),
        };
    }

    private sealed class UnquantizedFormat : IWeightFormat
    {
        public string Name => "none";
        public int GroupSize => 1;
        public bool IsQuantized => false;
        public WeightMatrix Create(int rows, int cols, DType source) =>
            source == DType.BF16 || source.BlockElements() > 1 ? Bf16Format.Instance.Create(rows, cols, source) : F32Format.Instance.Create(rows, cols, source);
    }
}
