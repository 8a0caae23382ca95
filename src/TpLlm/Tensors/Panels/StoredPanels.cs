namespace TpLlm.Tensors.Panels;

/// <summary>Panels read where they are stored: <c>[panels][pairs][16][2]</c> elements of <paramref name="pairBytes"/> per pair.</summary>
internal readonly unsafe struct StoredPanels(byte* w, int pairs, int pairBytes) : IPanelSource
{
    /// <inheritdoc/>
    public byte* Panel(int panel, int pair0, int pair1, int slot) => w + (long)panel * pairs * pairBytes;

    /// <inheritdoc/>
    public int MaxPairs => int.MaxValue;

    /// <inheritdoc/>
    public bool Streams => true;
}
