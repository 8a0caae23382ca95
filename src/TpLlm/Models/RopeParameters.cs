namespace TpLlm.Models;

/// <summary>Rotary position embedding settings: "default", "linear" (inverse frequencies / factor) or "llama3" frequency scaling.</summary>
/// <param name="Theta">Base of the inverse frequencies.</param>
/// <param name="Type">"default", "linear" or "llama3".</param>
/// <param name="Factor">linear, llama3: wavelength scale factor.</param>
/// <param name="LowFreqFactor">llama3: low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3: high-frequency factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3: the pre-scaling context length.</param>
public sealed record RopeParameters(double Theta, string Type, double Factor = 1, double LowFreqFactor = 1, double HighFreqFactor = 4,
    int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>
    /// Round the inverse frequencies to bfloat16, as transformers does when it runs a bf16
    /// checkpoint in its dtype (the <c>inv_freq</c> buffer is cast with the model). Set for
    /// configs whose <c>dtype</c>/<c>torch_dtype</c> is bfloat16, so logits match transformers;
    /// the rotation itself is still computed in double precision.
    /// </summary>
    public bool Bf16InverseFrequencies { get; init; }

    /// <summary>
    /// Per-pair divisors of the inverse frequencies, <c>[headDim/2]</c>, as a GGUF file stores a Llama 3 model's
    /// frequency scaling (<c>rope_freqs.weight</c>, which llama.cpp divides by); null when there are none.
    /// </summary>
    public double[]? FrequencyFactors { get; init; }

    /// <summary>Supported rope types.</summary>
    public static readonly string[] SupportedTypes = ["default", "linear", "llama3"];

    /// <summary>Inverse frequencies <c>[headDim/2]</c> after scaling (as transformers computes them).</summary>
    public double[] InverseFrequencies(int headDim)
    {
        var inv = new double[headDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / Math.Pow(Theta, 2.0 * i / headDim);
        if (Type == "llama3") ScaleLlama3(inv);
        if (Type == "linear")
            for (int i = 0; i < inv.Length; i++) inv[i] /= Factor;
        if (FrequencyFactors is { } f)
        {
            if (f.Length != inv.Length) throw new TpLlmException($"rope frequency factors: {f.Length} given for {inv.Length} rotary pairs (head_dim {headDim})");
            for (int i = 0; i < inv.Length; i++) inv[i] /= f[i];
        }
        if (Bf16InverseFrequencies)
            for (int i = 0; i < inv.Length; i++) inv[i] = TpLlm.Tensors.Bf16.ToF32(TpLlm.Tensors.Bf16.FromF32((float)inv[i]));
        return inv;
    }

    private void ScaleLlama3(double[] inv)
    {
        double lowWavelen = OriginalMaxPositionEmbeddings / LowFreqFactor;
        double highWavelen = OriginalMaxPositionEmbeddings / HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen > lowWavelen) inv[i] /= Factor;
            else if (wavelen >= highWavelen)
            {
                double smooth = (OriginalMaxPositionEmbeddings / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                inv[i] = (1 - smooth) * inv[i] / Factor + smooth * inv[i];
            }
        }
    }
}
