namespace TpLlm.Hub;

/// <summary>One file of a repository at a commit, as the Hub's model info lists it.</summary>
/// <param name="Name">Its path in the repository.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Etag">Its blob's name in the cache: the sha256 of an LFS file, else its git blob id.</param>
/// <param name="Sha256">The sha256 the Hub gives for an LFS file (checked after download), or null.</param>
public sealed record HubFile(string Name, long Size, string Etag, string? Sha256)
{
    /// <summary>The files TpLlm reads: the config, generation config, tokenizer files and safetensors weights with their index.</summary>
    public static bool IsNeeded(string name) =>
        !name.Contains('/') && (name is "config.json" or "generation_config.json" or "tokenizer.json" or "tokenizer_config.json"
            or "chat_template.jinja" or "model.safetensors.index.json" || name.EndsWith(".safetensors", StringComparison.Ordinal));
}
