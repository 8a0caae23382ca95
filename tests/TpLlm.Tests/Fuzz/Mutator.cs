using System.Text;

namespace TpLlm.Tests.Fuzz;

/// <summary>Seeded structure-aware and byte-level mutations of parser inputs.</summary>
internal sealed class Mutator(int seed)
{
    private readonly Random _rng = new(seed);

    private static readonly string[] Tokens =
    [
        "-1", "0", "1", "2147483648", "-9223372036854775808", "18446744073709551616", "99999999999999999999999", "1e999", "-1e-999", "1.5",
        "NaN", "null", "true", "false", "\"\"", "\"x\"", "\"BF16\"", "\"F32\"", "\"I64\"", "\"Q4\"", "[]", "{}", "[0]", "[0,0]", "[-1,5]",
        "[1,2,3]", "\"\\u0000\"", "\"\\ud800\"", "{\"a\":1}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];

    public T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];

    public int Next(int max) => _rng.Next(max);

    /// <summary>One to three mutations of a JSON text.</summary>
    public string MutateJson(string json)
    {
        int n = 1 + _rng.Next(3);
        for (int i = 0; i < n; i++) json = MutateJsonOnce(json);
        return json;
    }

    private string MutateJsonOnce(string json)
    {
        if (json.Length == 0) return Pick(Tokens);
        int pos = _rng.Next(json.Length);
        switch (_rng.Next(9))
        {
            case 0: // replace a number or literal with another token
                {
                    int s = pos;
                    while (s < json.Length && !(char.IsDigit(json[s]) || json[s] == '-' || json[s] == 't' || json[s] == 'f' || json[s] == 'n')) s++;
                    if (s >= json.Length) return json;
                    int e = s;
                    while (e < json.Length && (char.IsLetterOrDigit(json[e]) || json[e] is '-' or '.' or '+')) e++;
                    return json[..s] + Pick(Tokens) + json[e..];
                }
            case 1: // replace a string value
                {
                    int q = json.IndexOf('"', pos);
                    if (q < 0) return json;
                    int q2 = json.IndexOf('"', q + 1);
                    if (q2 < 0) return json;
                    return json[..q] + Pick(Tokens) + json[(q2 + 1)..];
                }
            case 2: // truncate
                return json[..pos];
            case 3: // delete a span
                return json.Remove(pos, Math.Min(json.Length - pos, 1 + _rng.Next(40)));
            case 4: // duplicate a span (duplicate keys, repeated entries)
                {
                    int len = Math.Min(json.Length - pos, 1 + _rng.Next(120));
                    return json.Insert(pos, json.Substring(pos, len));
                }
            case 5: // flip a character
                {
                    var c = json.ToCharArray();
                    c[pos] = (char)(c[pos] ^ (1 << _rng.Next(7)));
                    return new string(c);
                }
            case 6: // deep nesting
                {
                    int depth = 10 + _rng.Next(2000);
                    return json[..pos] + new string('[', depth) + new string(']', depth) + json[pos..];
                }
            case 7: // insert a random token
                return json.Insert(pos, Pick(Tokens));
            default: // huge number in the first numeric spot after pos
                {
                    int s = pos;
                    while (s < json.Length && !char.IsDigit(json[s])) s++;
                    if (s >= json.Length) return json;
                    return json[..s] + "9" + new string('9', _rng.Next(40)) + json[s..];
                }
        }
    }

    /// <summary>Byte-level mutations: bit flips, truncation, overwriting the length prefix.</summary>
    public byte[] MutateBytes(byte[] data)
    {
        var d = (byte[])data.Clone();
        switch (_rng.Next(5))
        {
            case 0:
                for (int i = 0, n = 1 + _rng.Next(8); i < n && d.Length > 0; i++) d[_rng.Next(d.Length)] ^= (byte)(1 << _rng.Next(8));
                return d;
            case 1:
                return d[.._rng.Next(d.Length + 1)];
            case 2: // the u64 header length
                if (d.Length >= 8)
                {
                    ulong v = _rng.Next(4) switch
                    {
                        0 => ulong.MaxValue,
                        1 => (ulong)_rng.NextInt64(),
                        2 => BitConverter.ToUInt64(d, 0) + (ulong)_rng.Next(-16, 16),
                        _ => (ulong)d.Length,
                    };
                    BitConverter.TryWriteBytes(d.AsSpan(0, 8), v);
                }
                return d;
            case 3: // append junk
                return [.. d, .. Enumerable.Range(0, _rng.Next(64)).Select(_ => (byte)_rng.Next(256))];
            default:
                return Encoding.UTF8.GetBytes(MutateJson(Encoding.UTF8.GetString(d)));
        }
    }
}
