using TpLlm.Checkpoints;

namespace TpLlm.Tensors;

/// <summary>
/// How a linear layer's weights are stored and multiplied (after vLLM's quantization methods: <see cref="Create"/> is
/// <c>create_weights</c>, <see cref="WeightMatrix.Multiply"/> its <c>apply</c>). The parallel layers, the loader and
/// the model see only this seam; each format is one folder under <c>Tensors/Formats</c>, registered in
/// <see cref="WeightFormats"/>.
/// </summary>
public interface IWeightFormat
{
    /// <summary>The name <c>--quantize</c> takes (<c>int8</c>, <c>q4</c>), or the storage's (<c>bf16</c>, <c>f32</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Input columns that share a scale (32 for the quantized formats, 1 otherwise). A row-parallel layer splits its
    /// input in whole groups, so every rank's input range starts on a group boundary.
    /// </summary>
    int GroupSize { get; }

    /// <summary>True for formats that lose precision (never used for the LM head or the embeddings).</summary>
    bool IsQuantized { get; }

    /// <summary>True when this format's products take AVX-VNNI on the 256-bit path where allowed (<see cref="MatMul.Vnni"/>).</summary>
    bool TakesVnni => false;

    /// <summary>
    /// A zero matrix <c>[rows, cols]</c> in this format, to be filled row by row from checkpoint rows of
    /// <paramref name="source"/> (<see cref="WeightMatrix.SetRow"/>): a quantized format quantizes each row as it
    /// arrives, so no full-precision copy of the shard is ever made.
    /// </summary>
    WeightMatrix Create(int rows, int cols, DType source);
}
