namespace TpLlm.Tensors.Panels;

/// <summary>
/// Where <see cref="PanelGemm"/> finds a block of column pairs of one 16-row panel: in the matrix's own panel storage
/// (<see cref="StoredPanels"/>), or made on the fly into scratch by a format stored otherwise (at most
/// <see cref="MaxPairs"/> at a time, not streamed).
/// </summary>
internal unsafe interface IPanelSource
{
    /// <summary>
    /// Pair 0 of panel <paramref name="panel"/>, such that its pairs [<paramref name="pair0"/>, <paramref name="pair1"/>)
    /// can be read; <paramref name="slot"/> (0 or 1) tells two panels wanted at once apart.
    /// </summary>
    byte* Panel(int panel, int pair0, int pair1, int slot);

    /// <summary>Most column pairs one call to <see cref="Panel"/> may ask for (the size of a source's scratch).</summary>
    int MaxPairs { get; }

    /// <summary>True when <see cref="Panel"/> points into memory the tiles stream (so the first tile prefetches ahead).</summary>
    bool Streams { get; }
}
