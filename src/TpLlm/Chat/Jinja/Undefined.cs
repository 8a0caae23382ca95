namespace TpLlm.Chat.Jinja;

/// <summary>A missing variable or attribute: falsy, prints as nothing, iterates as empty; using its attributes is an error.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new("");

    /// <summary>What was missing, for the error message.</summary>
    public string Name { get; }

    public Undefined(string name) => Name = name;
}
