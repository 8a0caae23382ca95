namespace TpLlm.Chat.Jinja;

/// <summary>The mutable object made by <c>namespace()</c>, whose attributes <c>set ns.x = …</c> may change from inside loops.</summary>
internal sealed class Namespace : Dictionary<string, object?>
{
    public Namespace() : base(StringComparer.Ordinal) { }
}
