using System.Text.RegularExpressions;

namespace TpLlm.Checkpoints.Gguf;

/// <summary>
/// A GGUF file's tensors under Hugging Face names (<c>blk.3.attn_q.weight</c> is
/// <c>model.layers.3.self_attn.q_proj.weight</c>), so the loader reads it as it reads safetensors. llama.cpp's
/// converter reorders the rows of a Llama's q and k projections within each head (interleaved rotary pairs instead of
/// halves); rows are read back in Hugging Face order, one row at a time, so a rank still reads only its own heads.
/// </summary>
public sealed partial class GgufCheckpoint : IWeightSource
{
    private readonly GgufFile _file;
    private readonly Dictionary<string, string> _hfToGguf = new(StringComparer.Ordinal);
    private readonly int _heads, _kvHeads;
    private readonly bool _permutedQk;

    /// <summary>Wraps <paramref name="file"/>; <paramref name="permutedQk"/> for llama.cpp's Llama layout of q and k (with the head counts).</summary>
    public GgufCheckpoint(GgufFile file, bool permutedQk, int heads, int kvHeads)
    {
        _file = file;
        _permutedQk = permutedQk;
        _heads = heads;
        _kvHeads = kvHeads;
        foreach (var name in file.Tensors.Keys)
            if (HfName(name) is { } hf) _hfToGguf[hf] = name;
    }

    /// <summary>The file.</summary>
    public GgufFile File => _file;

    /// <inheritdoc/>
    public string Location => _file.Path;

    /// <inheritdoc/>
    public IEnumerable<string> TensorNames => _hfToGguf.Keys;

    /// <inheritdoc/>
    public bool Contains(string name) => _hfToGguf.ContainsKey(name);

    /// <summary>The GGUF tensor behind a Hugging Face name, if any.</summary>
    public GgufTensorInfo? Info(string name) => _hfToGguf.TryGetValue(name, out var g) ? _file.Tensors[g] : null;

    /// <inheritdoc/>
    public SourceTensor Tensor(string name)
    {
        if (!_hfToGguf.TryGetValue(name, out var gguf))
            throw new CheckpointException($"{_file.Path}: tensor '{name}' not found in the GGUF file (its name there would be '{GgufName(name) ?? "?"}')");
        var info = _file.Tensors[gguf];
        string where = $"{_file.Path}: tensor '{gguf}'";
        var dtype = GgmlType.ToDType(info.Type)
            ?? throw new CheckpointException($"{where} is {info.TypeName}; TpLlm reads GGUF tensors of types F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K (requantize the file with llama-quantize, or load the safetensors model)");
        int headsOfRows = !_permutedQk ? 0 : gguf.EndsWith(".attn_q.weight", StringComparison.Ordinal) || gguf.EndsWith(".attn_q.bias", StringComparison.Ordinal) ? _heads
            : gguf.EndsWith(".attn_k.weight", StringComparison.Ordinal) || gguf.EndsWith(".attn_k.bias", StringComparison.Ordinal) ? _kvHeads : 0;
        if (headsOfRows > 0 && (info.Dims.Length != 2 || info.Dims[1] % headsOfRows != 0 || info.Dims[1] / headsOfRows % 2 != 0))
            throw new CheckpointException($"{where} has shape [{string.Join(", ", info.Shape)}]; llama's q and k projections must be matrices of {headsOfRows} heads of an even number of rows (q and k biases of a llama GGUF are not read)");
        return new GgufTensor(_file, info, dtype, where, headsOfRows);
    }

    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$")]
    private static partial Regex BlockName();

    private static readonly (string Gguf, string Hf)[] LayerNames =
    [
        ("attn_norm.weight", "input_layernorm.weight"),
        ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_k.weight", "self_attn.k_proj.weight"),
        ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_output.weight", "self_attn.o_proj.weight"),
        ("attn_q.bias", "self_attn.q_proj.bias"), ("attn_k.bias", "self_attn.k_proj.bias"), ("attn_v.bias", "self_attn.v_proj.bias"),
        ("attn_q_norm.weight", "self_attn.q_norm.weight"), ("attn_k_norm.weight", "self_attn.k_norm.weight"),
        ("ffn_norm.weight", "post_attention_layernorm.weight"),
        ("ffn_gate.weight", "mlp.gate_proj.weight"), ("ffn_up.weight", "mlp.up_proj.weight"), ("ffn_down.weight", "mlp.down_proj.weight"),
    ];

    private static readonly (string Gguf, string Hf)[] ModelNames =
    [
        ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"), ("output.weight", "lm_head.weight"),
    ];

    /// <summary>The Hugging Face name of a GGUF tensor (llama.cpp's names for Llama-family models), or null for others.</summary>
    public static string? HfName(string gguf)
    {
        foreach (var (g, h) in ModelNames) if (g == gguf) return h;
        var m = BlockName().Match(gguf);
        if (!m.Success) return null;
        foreach (var (g, h) in LayerNames) if (g == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{h}";
        return null;
    }

    /// <summary>The GGUF name of a Hugging Face tensor name, or null.</summary>
    public static string? GgufName(string hf)
    {
        foreach (var (g, h) in ModelNames) if (h == hf) return g;
        const string prefix = "model.layers.";
        if (!hf.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = hf.IndexOf('.', prefix.Length);
        if (dot < 0) return null;
        foreach (var (g, h) in LayerNames) if (h == hf[(dot + 1)..]) return $"blk.{hf[prefix.Length..dot]}.{g}";
        return null;
    }

    /// <inheritdoc/>
    public void Dispose() => _file.Dispose();
}
