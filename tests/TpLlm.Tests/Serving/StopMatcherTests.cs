using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

public class StopMatcherTests
{
    [Fact]
    public void Holds_back_a_possible_stop_string_and_cuts_before_it()
    {
        var m = new StopMatcher(["--"]);
        Assert.Equal("Hel", m.Add("Hel"));
        Assert.Equal("lo ", m.Add("lo -"));   // "-" might start "--"
        Assert.Equal("", m.Add("- world"));
        Assert.True(m.Stopped);
        Assert.Equal("Hello ", m.Text);
        Assert.Equal("", m.Flush());
    }

    [Fact]
    public void Releases_held_text_that_did_not_become_a_stop_string()
    {
        var m = new StopMatcher(["--", "END"]);
        Assert.Equal("a", m.Add("a-"));
        Assert.Equal("-b", m.Add("b"));
        Assert.Equal("x", m.Add("xEN"));
        Assert.Equal("EN", m.Flush());
        Assert.False(m.Stopped);
    }

    [Fact]
    public void Streamed_pieces_always_add_up_to_the_text_before_the_first_stop()
    {
        var rng = new Random(5);
        const string alphabet = "ab-\n";
        for (int c = 0; c < 3000; c++)
        {
            var text = new string(Enumerable.Range(0, rng.Next(0, 30)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
            var stops = Enumerable.Range(0, rng.Next(0, 3)).Select(_ => new string(Enumerable.Range(0, rng.Next(1, 4)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray())).ToArray();
            // when one stop string contains another, which one ends the text depends on where pieces break; leave those out
            if (stops.Any(a => stops.Any(b => !ReferenceEquals(a, b) && a.Contains(b, StringComparison.Ordinal)))) continue;
            int cut = stops.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(text.Length).Min();
            var m = new StopMatcher(stops);
            var released = "";
            for (int i = 0; i < text.Length;)
            {
                int n = Math.Min(text.Length - i, rng.Next(1, 5));
                released += m.Add(text.Substring(i, n));
                i += n;
            }
            released += m.Flush();
            Assert.True(text[..cut] == released, $"text {Show(text)} stops [{string.Join(", ", stops.Select(Show))}] released {Show(released)}");
            Assert.Equal(cut < text.Length, m.Stopped);
        }
    }

    private static string Show(string s) => "'" + s.Replace("\n", "\\n") + "'";
}
