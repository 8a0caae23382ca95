using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace TpLlm.Tensors;

/// <summary>
/// The prefetch cursor of <see cref="Bf16Gemm"/>'s AVX-512 path. It walks one thread's weight panels in the order the
/// first tile of each k-block reads them from memory — a panel pair's two panels in step, one 64-byte line (column
/// pair) of each per step, then the next pair — a lead of lines ahead of that read.
/// <para>
/// Every tile of a k-block advances it on a share of its column pairs (<c>quarters</c> of every four; the shares of
/// one block sum to four, see <see cref="Plan"/>), so a block's lines are requested once, spread over the time of all
/// its tiles. At T = 16 the 12-token tile reads a block from memory and the 4-token tile reads it again from L2: if
/// only the first tile prefetched, memory would idle through the second while the first waited on it. Each block
/// starts from an exact position (<see cref="Seek"/>), so rounding in the shares never accumulates.
/// </para>
/// </summary>
internal unsafe struct WeightStream
{
    /// <summary>Lines of lead kept however far the first tile has read: about DRAM latency at the tiles' read rate.</summary>
    public const int MinLeadLines = 32;

    private const int Line = 16; // uints per 64-byte line

    /// <summary>Next line of the panel-0 stream to request; panel 1's is <c>Next + PanelLength</c>.</summary>
    public uint* Next;

    /// <summary>End of the current panel 0, which is where its panel 1 starts.</summary>
    public uint* PanelEnd;

    /// <summary>uints per panel: <c>ceil(K/2) × 16</c>.</summary>
    public readonly long PanelLength;

    private readonly uint* _first;
    private readonly long _lines;

    /// <summary>
    /// A cursor over the panel pairs from row <paramref name="n0"/> (a multiple of the panel height) of panel storage
    /// <paramref name="w"/> <c>[rows/16][ceil(K/2)][16][2]</c>.
    /// </summary>
    public static WeightStream AtRow(ushort* w, int K, int n0)
    {
        int lines = (K + 1) / 2;
        return new WeightStream((uint*)(w + (long)(n0 / WeightMatrix.Panel) * lines * 2 * WeightMatrix.Panel), lines);
    }

    /// <summary>A cursor over the panel pairs that start at <paramref name="firstPanel"/>, panels of <paramref name="lines"/> lines.</summary>
    public WeightStream(uint* firstPanel, int lines)
    {
        _first = firstPanel;
        _lines = lines;
        PanelLength = (long)lines * Line;
        Next = PanelEnd = firstPanel + PanelLength;
    }

    /// <summary>Puts the cursor at stream line <paramref name="line"/> (panel pair <c>line / lines</c>, column pair <c>line % lines</c>).</summary>
    public void Seek(long line)
    {
        long pair = Math.DivRem(line, _lines, out long within);
        PanelEnd = _first + (2 * pair + 1) * PanelLength;
        Next = PanelEnd - PanelLength + within * Line;
    }

    /// <summary>Requests stream lines [<paramref name="from"/>, <paramref name="to"/>) at once.</summary>
    public void Request(long from, long to)
    {
        Seek(from);
        for (long i = from; i < to; i++) Step(ref Next, ref PanelEnd, PanelLength);
    }

    /// <summary>Requests the next line of both panels and moves on, to the next panel pair at a panel's end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref uint* next, ref uint* panelEnd, long panelLength)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(next);
            Sse.Prefetch0(next + panelLength);
        }
        next += Line;
        if (next == panelEnd)
        {
            next += panelLength;
            panelEnd = next + panelLength;
        }
    }

    /// <summary>
    /// Splits a k-block's four quarters over its tiles (<paramref name="tileTokens"/>: tokens per tile, in order) in
    /// proportion to their cost per column pair, largest remainder first; <paramref name="quarters"/> gets one entry
    /// per tile.
    /// </summary>
    public static void Plan(ReadOnlySpan<int> tileTokens, Span<int> quarters)
    {
        int total = 0, given = 0;
        foreach (int tokens in tileTokens) total += Cost(tokens);
        for (int i = 0; i < tileTokens.Length; i++)
        {
            quarters[i] = 4 * Cost(tileTokens[i]) / total;
            given += quarters[i];
        }
        for (; given < 4; given++)
        {
            int best = 0, bestRest = -1;
            for (int i = 0; i < tileTokens.Length; i++)
            {
                int rest = 4 * Cost(tileTokens[i]) - quarters[i] * total;
                if (rest > bestRest) (best, bestRest) = (i, rest);
            }
            quarters[best]++;
        }
    }

    /// <summary>
    /// Lead for a plan whose first tile takes <paramref name="firstQuarters"/>: the first tile reads every line of a
    /// <paramref name="blockPairs"/>-pair block but requests only its share, so the lead shrinks by the rest while it runs.
    /// </summary>
    public static int Lead(int firstQuarters, int blockPairs) => MinLeadLines + (4 - firstQuarters) * blockPairs / 4;

    // p0/p5 cycles per column pair of a two-panel tile: 4 FMAs per token and 4 widening ops, over two ports
    private static int Cost(int tokens) => 2 * tokens + 2;
}
