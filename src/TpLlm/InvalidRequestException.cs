using System.Text.RegularExpressions;

namespace TpLlm;

/// <summary>
/// A generation request or a setting that cannot run, naming the field at fault — a request's by its OpenAI/vLLM name
/// (<c>prompt</c>, <c>max_tokens</c>, <c>temperature</c>, <c>stop_token_ids</c>…), a setting's in the same style
/// (<c>tp</c>, <c>max_batch</c>, <c>context</c>, <c>quantize</c>) — so each front end can word the message in its own
/// terms: the HTTP server reports the field as the error's <c>param</c>, the CLI names its option
/// (<c>--max-new-tokens</c>, <c>--tp</c>). <see cref="Exception.Message"/> uses the field names.
/// </summary>
public sealed partial class InvalidRequestException : TpLlmException
{
    private readonly string _template;

    /// <summary>The field at fault (OpenAI/vLLM name).</summary>
    public string Field { get; }

    /// <summary>A machine-readable reason where OpenAI has one (e.g. <c>context_length_exceeded</c>), else null.</summary>
    public string? Code { get; }

    /// <summary>
    /// Creates the error. In <paramref name="template"/>, <c>{field}</c> stands for <paramref name="field"/>'s
    /// name and <c>{name:other_field}</c> for another field's.
    /// </summary>
    public InvalidRequestException(string field, string template, string? code = null) : base(Render(template, field, f => f))
    {
        Field = field;
        Code = code;
        _template = template;
    }

    /// <summary>The same error about one of several requests: its message starts with "<paramref name="which"/>: ".</summary>
    public InvalidRequestException For(string which) => new(Field, which + ": " + _template, Code);

    /// <summary>The message with every field named by <paramref name="name"/> (e.g. the CLI's option names).</summary>
    public string MessageNaming(Func<string, string> name) => Render(_template, Field, name);

    private static string Render(string template, string field, Func<string, string> name) =>
        Placeholder().Replace(template, m => name(m.Groups[1].Success ? m.Groups[1].Value : field));

    [GeneratedRegex(@"\{(?:field|name:([a-z_]+))\}")]
    private static partial Regex Placeholder();
}
