namespace TpLlm.Checkpoints.Gguf;

/// <summary>One tensor of a GGUF file.</summary>
/// <param name="Name">Its name (<c>blk.0.attn_q.weight</c>).</param>
/// <param name="Type">ggml type id (<see cref="GgmlType"/>).</param>
/// <param name="Dims">ggml's dimensions, innermost first: <c>ne[0]</c> is the length of a row.</param>
/// <param name="Offset">Start of its data, relative to the data section.</param>
/// <param name="ByteLength">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, uint Type, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>The shape outermost first, as safetensors and PyTorch write it: a matrix is <c>[ne[1], ne[0]]</c>.</summary>
    public long[] Shape => [.. Dims.Reverse()];

    /// <summary>The type's name.</summary>
    public string TypeName => GgmlType.Name(Type);
}
