using System.Globalization;

namespace TpLlm.Chat.Jinja;

/// <summary>Global functions every template sees: <c>range</c>, <c>namespace</c>, <c>raise_exception</c>, <c>strftime_now</c>, <c>dict</c>.</summary>
internal static class Globals
{
    public static Dictionary<string, object?> Create() => new(StringComparer.Ordinal)
    {
        ["range"] = new Callable("range", (a, _) => Range(a)),
        ["namespace"] = new Callable("namespace", (a, kw) =>
        {
            var ns = new Namespace();
            if (a.Count > 0 && a[0] is Dictionary<string, object?> init) foreach (var p in init) ns[p.Key] = p.Value;
            foreach (var p in kw) ns[p.Key] = p.Value;
            return ns;
        }),
        ["dict"] = new Callable("dict", (_, kw) => new Dictionary<string, object?>(kw, StringComparer.Ordinal)),
        ["raise_exception"] = new Callable("raise_exception", (a, _) =>
            throw new ChatTemplateException($"the chat template refused the conversation: {(a.Count > 0 ? Py.Str(a[0]) : "raise_exception()")}")),
        ["strftime_now"] = new Callable("strftime_now", (a, _) => Strftime(a.Count > 0 ? Py.Str(a[0]) : "%Y-%m-%d", DateTime.Now)),
    };

    private static List<object?> Range(List<object?> a)
    {
        long start = 0, stop, step = 1;
        if (a.Count == 1) stop = a[0] as long? ?? 0;
        else { start = a.ElementAtOrDefault(0) as long? ?? 0; stop = a.ElementAtOrDefault(1) as long? ?? 0; step = a.ElementAtOrDefault(2) as long? ?? 1; }
        if (step == 0) throw new ChatTemplateException("chat template: range() step must not be zero");
        var list = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (list.Count >= 1_000_000) throw new ChatTemplateException("chat template: range() over a million items");
            list.Add(i);
        }
        return list;
    }

    /// <summary>The strftime codes chat templates use (%d %b %Y %B %m %H %M %S %A %a %y %j %%).</summary>
    public static string Strftime(string format, DateTime t)
    {
        var sb = new System.Text.StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'd' => t.ToString("dd", inv), 'm' => t.ToString("MM", inv), 'Y' => t.ToString("yyyy", inv), 'y' => t.ToString("yy", inv),
                'b' => t.ToString("MMM", inv), 'B' => t.ToString("MMMM", inv), 'a' => t.ToString("ddd", inv), 'A' => t.ToString("dddd", inv),
                'H' => t.ToString("HH", inv), 'M' => t.ToString("mm", inv), 'S' => t.ToString("ss", inv), 'j' => t.DayOfYear.ToString("000", inv),
                '%' => "%", _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
