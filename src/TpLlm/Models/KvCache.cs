namespace TpLlm.Models;

/// <summary>
/// Keys and values of one rank for every layer and sequence slot:
/// <c>K, V [layers][slots, kvHeads_r, capacity_l, headDim]</c>, allocated once. Head-major, so attention streams one KV
/// head's positions contiguously. A global layer holds every position (<c>capacity = maxPos</c>); a sliding-window
/// layer of window W holds only a ring of <c>W + <see cref="RingChunk"/> − 1</c> positions, position p at index
/// p mod capacity — enough for a forward pass of up to <see cref="RingChunk"/> tokens of a sequence, whose first query
/// still sees its whole window while the pass writes the rest.
/// </summary>
public sealed class KvCache
{
    /// <summary>Most tokens of one sequence a forward pass may add to a cache with sliding-window rings (longer prompts go in pieces).</summary>
    public const int RingChunk = 64;

    private readonly float[][] _k, _v;
    private readonly int[] _lengths;
    private readonly int[] _capacity, _window; // per layer: positions held, sliding window (0: global)

    /// <summary>Sequence slots.</summary>
    public int Slots { get; }
    /// <summary>Positions per slot.</summary>
    public int MaxPositions { get; }
    /// <summary>KV heads of this rank.</summary>
    public int KvHeads { get; }
    /// <summary>Floats per head and position.</summary>
    public int HeadDim { get; }

    /// <summary>Allocates the cache; <paramref name="windows"/> gives each layer's sliding window (0 or null: every layer global).</summary>
    public KvCache(int layers, int slots, int maxPositions, int kvHeads, int headDim, IReadOnlyList<int>? windows = null)
    {
        Slots = slots;
        MaxPositions = maxPositions;
        (KvHeads, HeadDim) = (kvHeads, headDim);
        _k = new float[layers][];
        _v = new float[layers][];
        _capacity = new int[layers];
        _window = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            int w = windows?[l] ?? 0;
            _window[l] = w;
            _capacity[l] = w > 0 ? (int)Math.Min(maxPositions, (long)w + RingChunk - 1) : maxPositions;
            long perLayer = (long)slots * _capacity[l] * kvHeads * headDim;
            if (perLayer > Array.MaxLength)
                throw new TpLlmException($"KV cache of {slots} slots × {_capacity[l]} positions × {kvHeads} KV heads × {headDim} is too large for one layer; lower the batch or context");
            _k[l] = new float[perLayer];
            _v[l] = new float[perLayer];
        }
        _lengths = new int[slots];
    }

    /// <summary>Positions layer <paramref name="layer"/> holds per slot (a ring when it is less than <see cref="MaxPositions"/>).</summary>
    public int Capacity(int layer) => _capacity[layer];

    /// <summary>Layer <paramref name="layer"/>'s sliding window, or 0.</summary>
    public int Window(int layer) => _window[layer];

    /// <summary>True when some layer keeps a ring shorter than the context (so a forward pass is limited to <see cref="RingChunk"/> tokens a sequence).</summary>
    public bool HasRings => _capacity.Any(c => c < MaxPositions);

    /// <summary>
    /// True when a sequence in <paramref name="slot"/> can continue after its first <paramref name="length"/> positions
    /// (a shared prefix): every ring still holds the window before that point, i.e. the slot has not gone more than
    /// <see cref="RingChunk"/> positions past it.
    /// </summary>
    public bool CanResume(int slot, int length) => !HasRings || _lengths[slot] - length <= RingChunk;

    /// <summary>Tokens cached in <paramref name="slot"/>.</summary>
    public int Length(int slot) => _lengths[slot];

    /// <summary>Sets the cached length of <paramref name="slot"/> (0 frees it).</summary>
    public void SetLength(int slot, int length) => _lengths[slot] = length;

    /// <summary>Keys of one KV head of a slot in a layer: <c>[capacity, headDim]</c>, position p at row p mod capacity.</summary>
    public Span<float> Keys(int layer, int slot, int kvHead) => _k[layer].AsSpan(Offset(layer, slot, kvHead), _capacity[layer] * HeadDim);

    /// <summary>Values of one KV head of a slot in a layer: <c>[capacity, headDim]</c>, position p at row p mod capacity.</summary>
    public Span<float> Values(int layer, int slot, int kvHead) => _v[layer].AsSpan(Offset(layer, slot, kvHead), _capacity[layer] * HeadDim);

    /// <summary>
    /// Copies the keys and values of positions <c>[0, length)</c> of slot <paramref name="from"/> into slot
    /// <paramref name="to"/>, every layer and KV head (a shared prompt prefilled once); <paramref name="to"/> then holds
    /// <paramref name="length"/> tokens.
    /// </summary>
    public void CopyPrefix(int from, int to, int length)
    {
        if ((uint)from >= (uint)Slots || (uint)to >= (uint)Slots || from == to || length < 0 || length > _lengths[from] || !CanResume(from, length))
            throw new TpLlmException($"cannot copy {length} cached positions from slot {from} (holding {((uint)from < (uint)Slots ? _lengths[from] : 0)}) to slot {to} of {Slots}");
        for (int l = 0; l < _k.Length; l++)
        {
            // a ring's rows are those of positions p mod capacity: the same rows in both slots
            int n = Math.Min(length, _capacity[l]) * HeadDim;
            for (int h = 0; h < KvHeads; h++)
            {
                Keys(l, from, h)[..n].CopyTo(Keys(l, to, h));
                Values(l, from, h)[..n].CopyTo(Values(l, to, h));
            }
        }
        _lengths[to] = length;
    }

    private int Offset(int layer, int slot, int kvHead) => checked((slot * KvHeads + kvHead) * _capacity[layer] * HeadDim);

    /// <summary>Bytes held.</summary>
    public long ByteSize => 2L * _k.Sum(k => (long)k.Length) * 4;
}
