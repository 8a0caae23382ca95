using System.Text.Json;
using TpLlm.Chat.Jinja;

namespace TpLlm.Chat;

/// <summary>
/// A model's chat template: the Jinja <c>chat_template</c> from <c>tokenizer_config.json</c> (or
/// <c>chat_template.jinja</c>), rendered by a small Jinja engine that covers what the Llama 3,
/// Qwen2 and Mistral templates use — if/for/set/macro, loop variables, namespaces, filters such as
/// trim, tojson, selectattr — with Hugging Face's whitespace rules (trim_blocks, lstrip_blocks).
/// A folder without a template gets <see cref="FallbackSource"/>.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>
    /// The template used when a model has none: one line per message, <c>Role: content</c>, then
    /// <c>Assistant:</c> to prompt the reply. Documented in docs/serving.md.
    /// </summary>
    public const string FallbackSource =
        "{% for message in messages %}{{ message.role | capitalize }}: {{ message.content }}\n{% endfor %}" +
        "{% if add_generation_prompt %}Assistant:{% endif %}";

    private readonly Stmt[] _program;

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Where it came from (a file path, or "fallback").</summary>
    public string Origin { get; }

    /// <summary>True when the model had no template and <see cref="FallbackSource"/> is used.</summary>
    public bool IsFallback => Origin == "fallback";

    /// <summary>The <c>bos_token</c> the template sees ("" when unknown).</summary>
    public string BosToken { get; }

    /// <summary>The <c>eos_token</c> the template sees ("" when unknown).</summary>
    public string EosToken { get; }

    private ChatTemplate(string source, string origin, string bos, string eos)
    {
        try
        {
            _program = Parser.Parse(source);
        }
        catch (ChatTemplateException e)
        {
            throw new ChatTemplateException($"{origin}: {e.Message}", e);
        }
        Source = source; Origin = origin; BosToken = bos; EosToken = eos;
    }

    /// <summary>Parses <paramref name="source"/>; errors name <paramref name="origin"/> and the line.</summary>
    public static ChatTemplate Parse(string source, string origin = "chat template", string bosToken = "", string eosToken = "") =>
        new(source, origin, bosToken, eosToken);

    /// <summary>
    /// The template of the model in <paramref name="folder"/>: <c>chat_template.jinja</c> if present,
    /// else <c>chat_template</c> in <c>tokenizer_config.json</c> (a string, or the entry named
    /// "default" of a list), else the fallback. Special tokens come from <c>tokenizer_config.json</c>. For a GGUF file,
    /// <c>tokenizer.chat_template</c> and the BOS and EOS tokens of its metadata.
    /// </summary>
    public static ChatTemplate ForFolder(string folder)
    {
        if (Checkpoints.Gguf.GgufFile.IsGguf(folder))
        {
            using var file = new Checkpoints.Gguf.GgufFile(folder);
            return ForGguf(file);
        }
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        string? source = null, bos = null, eos = null;
        string origin = "fallback";
        if (IO.InputFile.Exists(configPath))
        {
            (source, bos, eos) = JsonInput.ReadFile(configPath, JsonInput.MaxConfigBytes, 64, root => ReadConfig(configPath, root),
                (m, e) => new ChatTemplateException(m, e));
            if (source is not null) origin = configPath + " (chat_template)";
        }
        var jinjaPath = Path.Combine(folder, "chat_template.jinja");
        if (IO.InputFile.Exists(jinjaPath)) { source = ReadSource(jinjaPath); origin = jinjaPath; }
        return new ChatTemplate(source ?? FallbackSource, origin, bos ?? "", eos ?? "");
    }

    /// <summary>The template of a GGUF file: <c>tokenizer.chat_template</c> and the BOS and EOS tokens of its metadata, else the fallback.</summary>
    public static ChatTemplate ForGguf(Checkpoints.Gguf.GgufFile file)
    {
        var (template, b, e) = Checkpoints.Gguf.GgufDescription.ChatTemplate(file);
        return new ChatTemplate(template ?? FallbackSource, template is null ? "fallback" : file.Path + " (tokenizer.chat_template)", b ?? "", e ?? "");
    }

    /// <summary>A template file's text (a regular file of at most 16 MiB, UTF-8).</summary>
    public static string ReadSource(string path) =>
        System.Text.Encoding.UTF8.GetString(IO.InputFile.ReadAll(path, JsonInput.MaxConfigBytes, m => new ChatTemplateException(m)));

    private static (string?, string?, string?) ReadConfig(string path, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ChatTemplateException($"{path}: the top level is not a JSON object");
        string? template = null;
        if (root.TryGetProperty("chat_template", out var t))
        {
            template = t.ValueKind switch
            {
                JsonValueKind.String => t.GetString(),
                JsonValueKind.Array => t.EnumerateArray()
                    .Where(x => x.ValueKind == JsonValueKind.Object && x.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default")
                    .Select(x => x.TryGetProperty("template", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null).FirstOrDefault()
                    ?? throw new ChatTemplateException($"{path}: chat_template is a list without an entry named \"default\""),
                JsonValueKind.Null => null,
                _ => throw new ChatTemplateException($"{path}: chat_template is a {t.ValueKind}, not a string or a list of named templates"),
            };
        }
        return (template, SpecialToken(root, "bos_token"), SpecialToken(root, "eos_token"));
    }

    // "bos_token": "<s>" or {"content": "<s>", …}
    private static string? SpecialToken(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()
        : null;

    /// <summary>
    /// Renders the conversation. With <paramref name="addGenerationPrompt"/> the text ends where
    /// the assistant's reply begins.
    /// </summary>
    /// <exception cref="ChatTemplateException">The template failed or refused the conversation; the message says why.</exception>
    public string Render(IReadOnlyList<ChatTurn> messages, bool addGenerationPrompt = true)
    {
        var list = messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = list,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken,
            ["eos_token"] = EosToken,
        };
        try
        {
            return Interpreter.Render(_program, vars);
        }
        catch (ChatTemplateException e)
        {
            throw new ChatTemplateException($"{Origin}: {e.Message}", e);
        }
    }
}
