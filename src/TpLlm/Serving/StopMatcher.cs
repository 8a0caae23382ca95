using System.Text;

namespace TpLlm.Serving;

/// <summary>
/// Finds stop strings in streamed text. Text that could still turn into a stop string is held
/// back, so a client never sees part of a stop string (vLLM does the same).
/// </summary>
public sealed class StopMatcher
{
    private readonly string[] _stops;
    private readonly StringBuilder _text = new();
    private int _released;

    /// <summary>Watches for <paramref name="stops"/> (empty strings are ignored).</summary>
    public StopMatcher(IEnumerable<string> stops) => _stops = stops.Where(s => s.Length > 0).ToArray();

    /// <summary>True once a stop string has appeared.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The text so far, up to (not including) the stop string once stopped.</summary>
    public string Text => _text.ToString();

    /// <summary>Adds text; returns what can be released now.</summary>
    public string Add(string piece)
    {
        if (Stopped || piece.Length == 0) return "";
        int searchFrom = Math.Max(0, _released - (_stops.Length == 0 ? 0 : _stops.Max(s => s.Length)));
        _text.Append(piece);
        if (_stops.Length == 0) return Release(_text.Length);
        var all = _text.ToString();
        int hit = -1;
        foreach (var s in _stops)
        {
            int i = all.IndexOf(s, searchFrom, StringComparison.Ordinal);
            if (i >= 0 && (hit < 0 || i < hit)) hit = i;
        }
        if (hit >= 0)
        {
            Stopped = true;
            _text.Length = hit;
            return Release(hit);
        }
        return Release(all.Length - HeldBack(all));
    }

    /// <summary>At the end of generation: releases everything still held back.</summary>
    public string Flush() => Stopped ? "" : Release(_text.Length);

    // the longest suffix of the text that is a proper prefix of a stop string
    private int HeldBack(string all)
    {
        int keep = 0;
        foreach (var s in _stops)
            for (int k = Math.Min(s.Length - 1, all.Length - _released); k > keep; k--)
                if (string.CompareOrdinal(all, all.Length - k, s, 0, k) == 0) { keep = k; break; }
        return keep;
    }

    private string Release(int upTo)
    {
        if (upTo <= _released) return "";
        var s = _text.ToString(_released, upTo - _released);
        _released = upTo;
        return s;
    }
}
