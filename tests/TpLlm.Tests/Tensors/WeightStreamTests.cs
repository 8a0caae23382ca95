using TpLlm.Tensors;

namespace TpLlm.Tests.Tensors;

public unsafe class WeightStreamTests
{
    [Theory]
    [InlineData(new[] { 1 }, new[] { 4 })]                    // decode: the one tile requests every line, as before
    [InlineData(new[] { 12 }, new[] { 4 })]
    [InlineData(new[] { 12, 4 }, new[] { 3, 1 })]             // T = 16: the 4-token pass (10 of 36 cycles) requests a quarter
    [InlineData(new[] { 12, 12 }, new[] { 2, 2 })]
    [InlineData(new[] { 12, 8 }, new[] { 2, 2 })]             // 26 : 18 cycles
    [InlineData(new[] { 12, 1 }, new[] { 3, 1 })]             // 26 : 4 — the remainder goes to the larger rest
    [InlineData(new[] { 12, 12, 12, 12, 12, 12, 12, 12 }, new[] { 1, 1, 1, 1, 0, 0, 0, 0 })]
    public void Plan_splits_four_quarters_by_cost(int[] tiles, int[] expected)
    {
        var quarters = new int[tiles.Length];
        WeightStream.Plan(tiles, quarters);
        Assert.Equal(expected, quarters);
    }

    [Fact]
    public void Plan_gives_out_exactly_four_quarters_for_every_token_block()
    {
        // every tile sequence Run512 makes for a block of up to 96 tokens: 12s, then at most an 8, a 4 and three 1s
        for (int T = 1; T <= 96; T++)
        {
            var tiles = new List<int>();
            int t12 = T / 12 * 12, rest = T - t12;
            for (int t = 0; t < t12; t += 12) tiles.Add(12);
            if (rest >= 8) { tiles.Add(8); rest -= 8; }
            if (rest >= 4) { tiles.Add(4); rest -= 4; }
            for (; rest > 0; rest--) tiles.Add(1);
            var quarters = new int[tiles.Count];
            WeightStream.Plan(tiles.ToArray(), quarters);
            Assert.True(quarters.Sum() == 4, $"T={T}: quarters {string.Join(",", quarters)}");
            Assert.All(quarters, q => Assert.InRange(q, 0, 4));
            Assert.True(quarters[0] >= quarters.Max(), $"T={T}: the first tile, which reads memory, has the largest share");
        }
    }

    [Fact]
    public void Lead_covers_what_the_first_tile_reads_beyond_its_share()
    {
        Assert.Equal(WeightStream.MinLeadLines, WeightStream.Lead(4, 512));
        Assert.Equal(WeightStream.MinLeadLines + 128, WeightStream.Lead(3, 512));
        Assert.Equal(WeightStream.MinLeadLines + 384, WeightStream.Lead(1, 512));
    }

    [Theory]
    [InlineData(7, 0, 20)]      // from the start across a panel's end into the next pair
    [InlineData(7, 5, 2)]       // ends exactly at a panel's end
    [InlineData(7, 6, 1)]
    [InlineData(2048, 1000, 3000)]
    [InlineData(1, 0, 5)]       // one column pair per panel: every step changes pairs
    public void Stepping_goes_where_seeking_goes(int lines, long from, int steps)
    {
        // panels of `lines` lines, in pairs; the walk covers each pair's panel 0 (panel 1 in step beside it)
        var buffer = new uint[(from + steps + 2 * lines) / lines * 2 * lines * 16 + 64];
        fixed (uint* first = buffer)
        {
            var walk = new WeightStream(first, lines);
            walk.Seek(from);
            var seen = new HashSet<long>();
            for (int i = 0; i < steps; i++)
            {
                long offset = walk.Next - first;
                long pair = offset / (2L * lines * 16), within = offset % (2L * lines * 16);
                Assert.True(within < lines * 16 && within % 16 == 0, $"step {i} is at uint {offset}, not on a panel-0 line");
                Assert.True(seen.Add(pair * lines + within / 16), $"step {i} repeats a line");
                Assert.Equal(from + i, pair * lines + within / 16);
                WeightStream.Step(ref walk.Next, ref walk.PanelEnd, walk.PanelLength);
            }
            var seek = new WeightStream(first, lines);
            seek.Seek(from + steps);
            Assert.True(walk.Next == seek.Next, "Next");
            Assert.True(walk.PanelEnd == seek.PanelEnd, "PanelEnd");
        }
    }

    [Theory]
    [InlineData(96, 4096, 0)]
    [InlineData(96, 4096, 32)]
    [InlineData(128, 33, 64)]   // K odd: ceil(K/2) lines per panel
    [InlineData(80, 2, 48)]     // one line per panel
    public void The_stream_walks_the_lines_a_thread_reads_from_its_first_row(int rows, int K, int n0)
    {
        // mark every (row, column pair) with a value that names it, then follow the cursor through the matrix
        var w = new WeightMatrix(rows, K, WeightFormat.BF16);
        int lines = (K + 1) / 2;
        for (int r = 0; r < rows; r++)
            w.SetBf16Row(r, Enumerable.Range(0, K).Select(c => (ushort)(c % 2 == 0 ? (r * 1000 + c / 2) % 65536 : 0)).ToArray());
        var stream = WeightStream.AtRow(w.Bf16Pointer, K, n0);
        stream.Seek(0);
        // the walk: panel pairs from n0, each panel pair's lines in order; panel 1 sits PanelLength past panel 0
        for (int pair = 0; n0 + 32 * pair < rows; pair++)
            for (int line = 0; line < lines; line++)
            {
                int row0 = n0 + 32 * pair, row1 = row0 + 16;
                Assert.Equal((ushort)((row0 * 1000 + line) % 65536), *(ushort*)stream.Next);
                if (row1 < rows) Assert.Equal((ushort)((row1 * 1000 + line) % 65536), *(ushort*)(stream.Next + stream.PanelLength));
                WeightStream.Step(ref stream.Next, ref stream.PanelEnd, stream.PanelLength);
            }
    }
}
