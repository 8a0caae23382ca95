using System.Text;
using System.Text.Json;
using TpLlm.Sampling.Json;

namespace TpLlm.Tests.Sampling.Json;

public class JsonStateTests
{
    /// <summary>How far the recognizer gets: every byte accepted and the object complete.</summary>
    internal static bool Accepts(ReadOnlySpan<byte> text)
    {
        var s = new JsonState();
        return s.Feed(text) && s.IsComplete;
    }

    /// <summary>The oracle: System.Text.Json parses an object, and the bytes are well-formed UTF-8.</summary>
    internal static bool Oracle(byte[] text)
    {
        if (!System.Text.Unicode.Utf8.IsValid(text)) return false;
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData("{}")]
    [InlineData(" \n{ }\t\r\n")]
    [InlineData("{\"a\":1}")]
    [InlineData("{\"a\": [1, -2.5e3, 0, -0, 0.125, 1E+2, 7e-1, true, false, null, {}, []], \"b\": \"x\\u00e9\\n\\\"\\\\\\/\"}")]
    [InlineData("{\"\": {\"\": {\"\": []}}}")]
    [InlineData("{\"é😀\": \"日本\"}")]
    public void Accepts_json_objects(string text)
    {
        Assert.True(Accepts(Encoding.UTF8.GetBytes(text)), text);
        Assert.True(Oracle(Encoding.UTF8.GetBytes(text)), text); // the oracle agrees
    }

    [Theory]
    [InlineData("[1]")]           // not an object
    [InlineData("\"a\"")]
    [InlineData("1")]
    [InlineData("{\"a\"}")]       // no value
    [InlineData("{\"a\":}")]
    [InlineData("{\"a\":1,}")]    // trailing comma
    [InlineData("{\"a\":01}")]    // leading zero
    [InlineData("{\"a\":1.}")]
    [InlineData("{\"a\":.5}")]
    [InlineData("{\"a\":-}")]
    [InlineData("{\"a\":1e}")]
    [InlineData("{\"a\":tru}")]
    [InlineData("{\"a\":True}")]
    [InlineData("{\"a\":\"\\x\"}")] // bad escape
    [InlineData("{\"a\":\"\\u12G4\"}")]
    [InlineData("{\"a\":\"tab\there\"}")] // raw control character
    [InlineData("{a:1}")]
    [InlineData("{'a':1}")]
    [InlineData("{\"a\":1]")]
    [InlineData("{\"a\":[1}")]
    [InlineData("{} {}")]         // a second value
    [InlineData("{}x")]
    [InlineData("{")]             // incomplete
    [InlineData("{\"a\":[")]
    public void Rejects_what_is_not_one_json_object(string text)
    {
        Assert.False(Accepts(Encoding.UTF8.GetBytes(text)), text);
        Assert.False(Oracle(Encoding.UTF8.GetBytes(text)), text);
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0x80 })]       // overlong
    [InlineData(new byte[] { 0xE0, 0x80, 0x80 })] // overlong
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // above U+10FFFF
    [InlineData(new byte[] { 0xC3 })]             // cut short
    [InlineData(new byte[] { 0x80 })]             // a lone continuation byte
    [InlineData(new byte[] { 0xFF })]
    public void Rejects_malformed_utf8_in_strings(byte[] bad)
    {
        byte[] text = [.. "{\"a\":\""u8, .. bad, .. "\"}"u8];
        Assert.False(Accepts(text));
        Assert.False(Oracle(text));
    }

    [Fact]
    public void Nesting_stops_at_the_maximum_depth()
    {
        string Nested(int depth) => "{\"a\":" + new string('[', depth - 1) + new string(']', depth - 1) + "}";
        Assert.True(Accepts(Encoding.UTF8.GetBytes(Nested(JsonState.MaxDepth))));
        Assert.False(Accepts(Encoding.UTF8.GetBytes(Nested(JsonState.MaxDepth + 1))));
    }

    [Fact]
    public void A_run_of_whitespace_grows_with_depth_until_the_object_is_complete()
    {
        Assert.Equal(2, JsonState.MaxWhitespaceAt(0));
        Assert.Equal(10, JsonState.MaxWhitespaceAt(2));
        string Spaced(int lead, int inner) => new string(' ', lead) + "{" + new string(' ', inner) + "\"a\":" + new string('\n', inner) + "[" + new string('\t', inner + 4) + "1]}";
        Assert.True(Accepts(Encoding.UTF8.GetBytes(Spaced(2, 6))));
        Assert.False(Accepts(Encoding.UTF8.GetBytes(Spaced(3, 6))));
        Assert.False(Accepts(Encoding.UTF8.GetBytes(Spaced(2, 7))));
        Assert.True(Accepts(Encoding.UTF8.GetBytes("{}" + new string(' ', 1000)))); // after it: no limit
        Assert.True(Accepts(Encoding.UTF8.GetBytes("{\"a\": \"" + new string(' ', 1000) + "\"}"))); // nor inside strings
        var s = new JsonState();
        Assert.True(s.Feed("{\"a\""u8));
        Assert.True(s.Feed("      "u8)); // the run restarts after each token
        Assert.True(s.Feed(":"u8));
        Assert.True(s.Feed("      "u8));
        Assert.False(s.Feed(" "u8));
    }

    [Fact]
    public void Every_prefix_of_a_random_object_is_accepted_and_only_the_whole_is_complete()
    {
        var rng = new Random(11);
        for (int n = 0; n < 500; n++)
        {
            var text = RandomJson.Object(rng, 4, leadingSpace: true);
            var s = new JsonState();
            for (int i = 0; i < text.Length; i++)
            {
                Assert.True(s.Feed(text[i]), $"byte {i} of {Encoding.UTF8.GetString(text)}");
                Assert.Equal(i >= LastNonSpace(text), s.IsComplete);
            }
            Assert.True(s.IsComplete, Encoding.UTF8.GetString(text));
            Assert.True(Oracle(text));
        }
    }

    private static int LastNonSpace(byte[] text)
    {
        int i = text.Length - 1;
        while (text[i] is (byte)' ' or (byte)'\n' or (byte)'\t' or (byte)'\r') i--;
        return i;
    }

    [Fact]
    public void Agrees_with_system_text_json_on_mutated_objects()
    {
        var rng = new Random(7);
        byte[] alphabet = [.. "{}[]\":,.-+eE0123456789 \n\\/utfnrlsa"u8, 0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xED, 0xA0, 0xF0, 0x9F, 0xFF];
        int accepted = 0, rejected = 0;
        for (int n = 0; n < 20_000; n++)
        {
            var text = RandomJson.Object(rng, 3, leadingSpace: false).ToList(); // runs of ≤ 4 + 2 inserted stay within the limit
            for (int m = rng.Next(1, 3); m > 0; m--)
            {
                int at = rng.Next(text.Count + 1);
                byte b = rng.Next(4) == 0 ? (byte)rng.Next(256) : alphabet[rng.Next(alphabet.Length)];
                switch (rng.Next(3))
                {
                    case 0 when at < text.Count: text[at] = b; break;
                    case 1 when at < text.Count: text.RemoveAt(at); break;
                    default: text.Insert(at, b); break;
                }
            }
            var bytes = text.ToArray();
            bool expected = Oracle(bytes);
            Assert.True(expected == Accepts(bytes), $"System.Text.Json says {expected} for {Convert.ToHexString(bytes)} ({Encoding.UTF8.GetString(bytes)})");
            if (expected) accepted++; else rejected++;
        }
        Assert.True(accepted > 1000 && rejected > 1000, $"{accepted} accepted, {rejected} rejected: the mutations should land on both sides");
    }
}
