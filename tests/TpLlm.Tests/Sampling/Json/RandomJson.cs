using System.Text;

namespace TpLlm.Tests.Sampling.Json;

/// <summary>
/// Random JSON objects with every kind of value, escape and number form, and runs of whitespace short enough for
/// <see cref="TpLlm.Sampling.Json.JsonState"/>'s limit (≤ 4 inside the object; ≤ 2, or none, before it).
/// </summary>
internal static class RandomJson
{
    public static byte[] Object(Random rng, int depth, bool leadingSpace = true)
    {
        var sb = new StringBuilder();
        if (leadingSpace) Space(rng, sb, 2);
        WriteObject(rng, sb, depth);
        Space(rng, sb);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void Space(Random rng, StringBuilder sb, int max = 4)
    {
        if (rng.Next(3) != 0) return;
        for (int n = rng.Next(1, max + 1); n > 0; n--) sb.Append(" \n\t\r"[rng.Next(4)]);
    }

    private static void WriteObject(Random rng, StringBuilder sb, int depth)
    {
        sb.Append('{');
        int n = rng.Next(depth > 0 ? 4 : 2);
        for (int i = 0; i < n; i++)
        {
            if (i > 0) sb.Append(',');
            Space(rng, sb);
            WriteString(rng, sb);
            Space(rng, sb);
            sb.Append(':');
            Space(rng, sb);
            WriteValue(rng, sb, depth - 1);
            Space(rng, sb);
        }
        if (n == 0) Space(rng, sb);
        sb.Append('}');
    }

    private static void WriteValue(Random rng, StringBuilder sb, int depth)
    {
        switch (rng.Next(depth > 0 ? 8 : 6))
        {
            case 0: WriteString(rng, sb); break;
            case 1: WriteNumber(rng, sb); break;
            case 2: sb.Append("true"); break;
            case 3: sb.Append("false"); break;
            case 4: sb.Append("null"); break;
            case 5: WriteNumber(rng, sb); break;
            case 6: WriteObject(rng, sb, depth); break;
            default:
                sb.Append('[');
                int n = rng.Next(4);
                for (int i = 0; i < n; i++)
                {
                    if (i > 0) sb.Append(',');
                    Space(rng, sb);
                    WriteValue(rng, sb, depth - 1);
                    Space(rng, sb);
                }
                sb.Append(']');
                break;
        }
    }

    private static void WriteString(Random rng, StringBuilder sb)
    {
        sb.Append('"');
        for (int n = rng.Next(6); n > 0; n--)
            switch (rng.Next(6))
            {
                case 0: sb.Append('\\').Append("\"\\/bfnrt"[rng.Next(8)]); break;
                case 1: sb.Append($"\\u{rng.Next(0x10000):x4}"); break;
                case 2: sb.Append(char.ConvertFromUtf32(rng.Next(2) == 0 ? rng.Next(0x80, 0xD800) : rng.Next(0x10000, 0x110000))); break;
                default:
                    char c = (char)rng.Next(0x20, 0x7F);
                    sb.Append(c is '"' or '\\' ? 'q' : c);
                    break;
            }
        sb.Append('"');
    }

    private static void WriteNumber(Random rng, StringBuilder sb)
    {
        if (rng.Next(2) == 0) sb.Append('-');
        sb.Append(rng.Next(3) == 0 ? "0" : rng.Next(1, 100000).ToString());
        if (rng.Next(2) == 0) sb.Append('.').Append(rng.Next(1000));
        if (rng.Next(3) == 0) sb.Append("eE"[rng.Next(2)]).Append(rng.Next(3) switch { 0 => "+", 1 => "-", _ => "" }).Append(rng.Next(30));
    }
}
