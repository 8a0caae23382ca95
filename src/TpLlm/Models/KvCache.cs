namespace TpLlm.Models;

/// <summary>
/// Keys and values of one rank for every layer and sequence slot:
/// <c>K, V [layers][slots, kvHeads_r, maxPos, headDim]</c>, allocated once. Head-major, so attention streams one KV
/// head's positions contiguously.
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _k, _v;
    private readonly int[] _lengths;

    /// <summary>Sequence slots.</summary>
    public int Slots { get; }
    /// <summary>Positions per slot.</summary>
    public int MaxPositions { get; }
    /// <summary>KV heads of this rank.</summary>
    public int KvHeads { get; }
    /// <summary>Floats per head and position.</summary>
    public int HeadDim { get; }

    /// <summary>Allocates the cache.</summary>
    public KvCache(int layers, int slots, int maxPositions, int kvHeads, int headDim)
    {
        long perLayer = (long)slots * maxPositions * kvHeads * headDim;
        if (perLayer > Array.MaxLength)
            throw new TpLlmException($"KV cache of {slots} slots × {maxPositions} positions × {kvHeads} KV heads × {headDim} is too large for one layer; lower the batch or context");
        Slots = slots;
        MaxPositions = maxPositions;
        (KvHeads, HeadDim) = (kvHeads, headDim);
        _k = new float[layers][];
        _v = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _k[l] = new float[perLayer];
            _v[l] = new float[perLayer];
        }
        _lengths = new int[slots];
    }

    /// <summary>Tokens cached in <paramref name="slot"/>.</summary>
    public int Length(int slot) => _lengths[slot];

    /// <summary>Sets the cached length of <paramref name="slot"/> (0 frees it).</summary>
    public void SetLength(int slot, int length) => _lengths[slot] = length;

    /// <summary>Keys of one KV head of a slot in a layer: <c>[maxPos, headDim]</c>.</summary>
    public Span<float> Keys(int layer, int slot, int kvHead) => _k[layer].AsSpan(Offset(slot, kvHead), MaxPositions * HeadDim);

    /// <summary>Values of one KV head of a slot in a layer: <c>[maxPos, headDim]</c>.</summary>
    public Span<float> Values(int layer, int slot, int kvHead) => _v[layer].AsSpan(Offset(slot, kvHead), MaxPositions * HeadDim);

    /// <summary>
    /// Copies the keys and values of positions <c>[0, length)</c> of slot <paramref name="from"/> into slot
    /// <paramref name="to"/>, every layer and KV head (a shared prompt prefilled once); <paramref name="to"/> then holds
    /// <paramref name="length"/> tokens.
    /// </summary>
    public void CopyPrefix(int from, int to, int length)
    {
        if ((uint)from >= (uint)Slots || (uint)to >= (uint)Slots || from == to || length < 0 || length > _lengths[from])
            throw new TpLlmException($"cannot copy {length} cached positions from slot {from} (holding {((uint)from < (uint)Slots ? _lengths[from] : 0)}) to slot {to} of {Slots}");
        int n = length * HeadDim;
        for (int l = 0; l < _k.Length; l++)
            for (int h = 0; h < KvHeads; h++)
            {
                Keys(l, from, h)[..n].CopyTo(Keys(l, to, h));
                Values(l, from, h)[..n].CopyTo(Values(l, to, h));
            }
        _lengths[to] = length;
    }

    private int Offset(int slot, int kvHead) => (slot * KvHeads + kvHead) * MaxPositions * HeadDim;

    /// <summary>Bytes held.</summary>
    public long ByteSize => 2L * _k.Length * (_k.Length > 0 ? _k[0].Length : 0) * 4;
}
