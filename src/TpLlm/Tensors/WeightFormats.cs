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

    /// <summary>The checkpoint's own precision: bf16 rows as bf16, F16 and F32 rows as f32.</summary>
    public static IWeightFormat Native { get; } = new NativeFormat();

    /// <summary>The names <c>--quantize</c> takes: none and each quantized format's.</summary>
    public static IReadOnlyList<string> QuantizeNames { get; } = ["none", .. Quantized.Select(f => f.Name)];

    /// <summary>The format <c>--quantize <paramref name="name"/></c> selects: null for none (the checkpoint's precision).</summary>
    public static IWeightFormat? ForQuantize(string name) =>
        name == "none" ? null
        : Quantized.FirstOrDefault(f => f.Name == name)
          ?? throw new TpLlmException($"--quantize '{name}' is not supported (allowed: {string.Join(", ", QuantizeNames)})");

    // bf16 stays bf16; anything else would round, so it is widened
    private sealed class NativeFormat : IWeightFormat
    {
        public string Name => "none";
        public int GroupSize => 1;
        public bool IsQuantized => false;
        public WeightMatrix Create(int rows, int cols, DType source) =>
            source == DType.BF16 ? Bf16Format.Instance.Create(rows, cols, source) : F32Format.Instance.Create(rows, cols, source);
    }
}
