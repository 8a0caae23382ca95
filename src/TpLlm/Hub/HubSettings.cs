namespace TpLlm.Hub;

/// <summary>
/// Where the Hub is and where its files go, read from the environment variables <c>huggingface_hub</c> reads, with its
/// defaults: <c>HF_ENDPOINT</c> (https://huggingface.co), <c>HF_HOME</c> (<c>$XDG_CACHE_HOME/huggingface</c>, else
/// <c>~/.cache/huggingface</c>), <c>HF_HUB_CACHE</c> (<c>$HF_HOME/hub</c>), <c>HF_TOKEN</c> (else the file
/// <c>HF_TOKEN_PATH</c>, default <c>$HF_HOME/token</c>) and <c>HF_HUB_OFFLINE</c>.
/// </summary>
/// <param name="Endpoint">The Hub's base address, without a trailing slash.</param>
/// <param name="CacheDir">The cache shared with Python's huggingface_hub.</param>
/// <param name="Token">An access token for gated and private models, or null.</param>
/// <param name="Offline">Use the cache only.</param>
public sealed record HubSettings(string Endpoint, string CacheDir, string? Token, bool Offline)
{
    /// <summary>The settings the environment gives.</summary>
    public static HubSettings FromEnvironment()
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        string home = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        string cache = Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub");
        string? token = Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN");
        if (token is null)
        {
            var tokenPath = Env("HF_TOKEN_PATH") ?? Path.Combine(home, "token");
            try
            {
                if (File.Exists(tokenPath)) token = File.ReadAllText(tokenPath).Trim() is { Length: > 0 } t ? t : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HubException($"{tokenPath}: cannot read the Hub token file: {e.Message}", e);
            }
        }
        bool offline = Env("HF_HUB_OFFLINE") is { } o && o.ToLowerInvariant() is "1" or "true" or "yes" or "on";
        return new HubSettings((Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/'), cache, token, offline);
    }
}
