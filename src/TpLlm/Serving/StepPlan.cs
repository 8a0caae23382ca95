using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Serving;

/// <summary>
/// One step of the continuous batch as rank 0 plans it and every rank runs it, and its wire format — written here and
/// read here only (<see cref="Reader"/>), an int array rank 0 broadcasts. Rows that sample this step come first
/// (decode tokens and last prompt chunks), then prompt chunks that do not.
/// <para>Layout: <c>[rows, logprobs wanted (0/1), rows that sample]</c>, then per row <c>slot, start, tokens fed, new
/// (0/1)</c> and, for a running sequence, the tokens fed; for a new one the slot to copy <c>[0, start)</c> from (−1: its
/// own cache), the prompt's length and the whole prompt (of which <c>[start, start + fed)</c> is fed), then its request:
/// temperature, top-k, top-p, min-p, presence, frequency and repetition penalties (floats as their bits), the logit-bias
/// count and (id, bias bits) pairs, min tokens, ignore eos (0/1), the stop-id count and ids, the seed (low, high), top
/// logprobs (−1: none wanted), the response format, and prompt logprobs (−1: none).</para>
/// </summary>
internal sealed class StepPlan
{
    private readonly List<int> _sampled = [], _pending = [];
    private readonly List<int> _sampledSlots = [];

    /// <summary>The slots of the rows that sample, in row order (rank 0 delivers their tokens).</summary>
    public IReadOnlyList<int> SampledSlots => _sampledSlots;

    /// <summary>Rows planned so far.</summary>
    public int Rows { get; private set; }

    /// <summary>Rows planned so far that sample.</summary>
    public int SampledRows { get; private set; }

    /// <summary>Starts a new step.</summary>
    public void Clear()
    {
        _sampled.Clear();
        _pending.Clear();
        _sampledSlots.Clear();
        Rows = SampledRows = 0;
    }

    /// <summary>A running sequence's next tokens: its decode token, or the next chunk of its prompt (<paramref name="samples"/> when it is the last).</summary>
    public void Continue(int slot, int start, ReadOnlySpan<int> tokens, bool samples)
    {
        var row = Begin(slot, samples);
        row.Add(slot);
        row.Add(start);
        row.Add(tokens.Length);
        row.Add(0);
        row.AddRange(tokens);
    }

    /// <summary>
    /// A request admitted to <paramref name="slot"/>: <paramref name="start"/> prompt tokens already cached (copied from
    /// <paramref name="copyFrom"/>, or −1 for the slot's own cache), <paramref name="feed"/> fed now.
    /// </summary>
    public void Admit(int slot, int start, int feed, int copyFrom, GenerationRequest r, bool samples)
    {
        var row = Begin(slot, samples);
        row.Add(slot);
        row.Add(start);
        row.Add(feed);
        row.Add(1);
        row.Add(copyFrom);
        row.Add(r.PromptIds.Length);
        row.AddRange(r.PromptIds);
        var s = r.Sampling;
        row.Add(BitConverter.SingleToInt32Bits(s.Temperature));
        row.Add(s.TopK);
        row.Add(BitConverter.SingleToInt32Bits(s.TopP));
        row.Add(BitConverter.SingleToInt32Bits(s.MinP));
        row.Add(BitConverter.SingleToInt32Bits(s.PresencePenalty));
        row.Add(BitConverter.SingleToInt32Bits(s.FrequencyPenalty));
        row.Add(BitConverter.SingleToInt32Bits(s.RepetitionPenalty));
        row.Add(s.LogitBias?.Count ?? 0);
        if (s.LogitBias is { } bias)
            foreach (var (id, b) in bias)
            {
                row.Add(id);
                row.Add(BitConverter.SingleToInt32Bits(b));
            }
        row.Add(s.MinTokens);
        row.Add(r.IgnoreEos ? 1 : 0);
        row.Add(r.StopTokenIds.Count);
        row.AddRange(r.StopTokenIds);
        row.Add((int)(uint)s.Seed);
        row.Add((int)(uint)(s.Seed >> 32));
        row.Add(r.WantLogprobs || r.TopLogprobs > 0 ? r.TopLogprobs : -1);
        row.Add((int)r.ResponseFormat);
        row.Add(r.PromptLogprobs ?? -1);
    }

    private List<int> Begin(int slot, bool samples)
    {
        Rows++;
        if (samples)
        {
            SampledRows++;
            _sampledSlots.Add(slot);
        }
        return samples ? _sampled : _pending;
    }

    /// <summary>Writes the step into <paramref name="wire"/> (cleared first); returns its length.</summary>
    public int Encode(bool logprobs, List<int> wire)
    {
        wire.Clear();
        wire.Add(Rows);
        wire.Add(logprobs ? 1 : 0);
        wire.Add(SampledRows);
        wire.AddRange(_sampled);
        wire.AddRange(_pending);
        return wire.Count;
    }

    /// <summary>A new request's part of a row: its prompt and how it samples.</summary>
    /// <param name="CopyFrom">The slot whose cache holds the prompt's first Start tokens, or −1.</param>
    /// <param name="Sequence">The whole prompt, its sampling parameters (logit bias included), stop ids, ignore-eos and response format.</param>
    /// <param name="TopLogprobs">Top-N logprobs per token (0: the chosen token's only; −1: none).</param>
    /// <param name="PromptLogprobs">Top-N prompt logprobs, or −1 for none.</param>
    public sealed record Admission(int CopyFrom, SequenceSpec Sequence, int TopLogprobs, int PromptLogprobs);

    /// <summary>Reads a step from the wire, a row at a time (every rank).</summary>
    public ref struct Reader
    {
        private readonly ReadOnlySpan<int> _wire;
        private int _p;

        /// <summary>Starts reading <paramref name="wire"/>.</summary>
        public Reader(ReadOnlySpan<int> wire)
        {
            _wire = wire;
            Rows = wire[0];
            WantLogprobs = wire[1] == 1;
            SampledRows = wire[2];
            _p = 3;
        }

        /// <summary>Rows in the step.</summary>
        public int Rows { get; }

        /// <summary>Some running request wants logprobs (the step computes them on every rank).</summary>
        public bool WantLogprobs { get; }

        /// <summary>The first rows, which sample.</summary>
        public int SampledRows { get; }

        /// <summary>
        /// The next row: its slot, the first position it feeds, the tokens fed (a view on the wire), and — for a request
        /// admitted this step — its <see cref="Admission"/> (null for a running sequence).
        /// </summary>
        public void Next(out int slot, out int start, out ReadOnlySpan<int> fed, out Admission? admission)
        {
            slot = _wire[_p++];
            start = _wire[_p++];
            int feed = _wire[_p++];
            bool fresh = _wire[_p++] == 1;
            if (!fresh)
            {
                fed = _wire.Slice(_p, feed);
                _p += feed;
                admission = null;
                return;
            }
            int copyFrom = _wire[_p++], length = _wire[_p++];
            var prompt = _wire.Slice(_p, length);
            fed = prompt.Slice(start, feed);
            _p += length;
            var sampling = new SamplingParams
            {
                Temperature = NextFloat(), TopK = _wire[_p++], TopP = NextFloat(), MinP = NextFloat(),
                PresencePenalty = NextFloat(), FrequencyPenalty = NextFloat(), RepetitionPenalty = NextFloat(),
                LogitBias = ReadBias(),
                MinTokens = _wire[_p++],
            };
            bool ignoreEos = _wire[_p++] == 1;
            var stopIds = _wire.Slice(_p + 1, _wire[_p]).ToArray();
            _p += 1 + stopIds.Length;
            ulong seed = (uint)_wire[_p++] | ((ulong)(uint)_wire[_p++] << 32);
            int top = _wire[_p++];
            var format = (ResponseFormat)_wire[_p++];
            int promptTop = _wire[_p++];
            admission = new Admission(copyFrom, new SequenceSpec(prompt.ToArray(), sampling with { Seed = seed }, stopIds, ignoreEos, format), top, promptTop);
        }

        private float NextFloat() => BitConverter.Int32BitsToSingle(_wire[_p++]);

        private Dictionary<int, float>? ReadBias()
        {
            int n = _wire[_p++];
            if (n == 0) return null;
            var bias = new Dictionary<int, float>(n);
            for (int i = 0; i < n; i++, _p += 2) bias[_wire[_p]] = BitConverter.Int32BitsToSingle(_wire[_p + 1]);
            return bias;
        }
    }
}
