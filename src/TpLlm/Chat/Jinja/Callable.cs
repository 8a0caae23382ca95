namespace TpLlm.Chat.Jinja;

/// <summary>A function value: a global (range, namespace, raise_exception), a bound method or a macro.</summary>
internal sealed record Callable(string Name, Func<List<object?>, Dictionary<string, object?>, object?> Invoke);
