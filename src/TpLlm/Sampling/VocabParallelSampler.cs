using TpLlm.Distributed;
using TpLlm.Parallel;

namespace TpLlm.Sampling;

/// <summary>
/// Picks tokens from vocab-sharded logits without gathering the vocabulary: every rank reduces
/// its slice <c>[B, V_pad/tp]</c> and only a few numbers per row cross ranks. Padded columns
/// and ids at or past the samplable limit are treated as −∞ (never read). All ranks return the
/// same tokens, identical to <see cref="FullVocabSampler"/> on the gathered row.
/// <list type="bullet">
/// <item>greedy: one (value, id) pair per rank and row — <c>B·tp·8</c> bytes;</item>
/// <item>top-k: each rank's k best, merged;</item>
/// <item>otherwise: all-reduce of max and Σexp, a threshold search for top-p, and a draw located
/// by each rank's kept mass;</item>
/// <item>logprobs: log-sum-exp by all-reduce(max) then all-reduce(Σexp), like Megatron's
/// vocab-parallel cross entropy, plus each rank's top-n.</item>
/// </list>
/// </summary>
public sealed class VocabParallelSampler
{
    private readonly ICommunicator _comm;
    private readonly int _start, _valid, _shard;
    private Candidate[] _send = [], _recv = [], _heap = [];
    private double[] _d = [], _dAll = [], _scratch = [];
    private float[] _f = [];
    private int[] _i = [], _iAll = [];

    /// <summary>The vocabulary split.</summary>
    public VocabPartition Partition { get; }

    /// <summary>Ids at or above this are never chosen (min of V and the tokenizer's vocab).</summary>
    public int SamplableVocab { get; }

    /// <summary>Creates the sampler of one rank.</summary>
    public VocabParallelSampler(ICommunicator comm, VocabPartition partition, int samplableVocab = int.MaxValue)
    {
        if (partition.TpSize != comm.Size) throw new TpLlmException($"vocab partition is for tp = {partition.TpSize}, the group has {comm.Size} ranks");
        if (samplableVocab < 1) throw new TpLlmException($"samplable vocab {samplableVocab} must be ≥ 1");
        _comm = comm;
        Partition = partition;
        SamplableVocab = Math.Min(samplableVocab, partition.VocabSize);
        _start = partition.Start(comm.Rank);
        _shard = partition.ShardSize;
        _valid = partition.SamplableRows(comm.Rank, SamplableVocab);
    }

    private ReadOnlySpan<float> Row(ReadOnlySpan<float> local, int b) => local.Slice(b * _shard, _valid);

    /// <summary>Picks one token per row of <paramref name="local"/> <c>[B, V_pad/tp]</c>.</summary>
    public void Sample(ReadOnlySpan<float> local, int B, IReadOnlyList<SamplingParams> ps, IReadOnlyList<SplitMix64> rngs, Span<int> tokens)
    {
        Greedy(local, B, tokens);
        for (int b = 0; b < B; b++)
        {
            var p = ps[b];
            if (p.IsGreedy) continue;
            double u = rngs[b].NextDouble();
            tokens[b] = p.TopK > 0 ? SampleTopK(Row(local, b), p, u) : SampleFull(Row(local, b), p, u);
        }
    }

    /// <summary>Argmax of every row (ties to the lowest id).</summary>
    public void Greedy(ReadOnlySpan<float> local, int B, Span<int> tokens)
    {
        Grow(ref _send, B);
        Grow(ref _recv, B * _comm.Size);
        for (int b = 0; b < B; b++) _send[b] = LocalReductions.Argmax(Row(local, b), _start);
        _comm.AllGather<Candidate>(_send.AsSpan(0, B), _recv);
        for (int b = 0; b < B; b++)
        {
            var best = Candidate.None;
            for (int r = 0; r < _comm.Size; r++)
                if (_recv[r * B + b].Beats(best)) best = _recv[r * B + b];
            tokens[b] = best.Id == int.MaxValue ? 0 : best.Id;
        }
    }

    private int SampleTopK(ReadOnlySpan<float> row, SamplingParams p, double u)
    {
        int k = Math.Min(p.TopK, SamplableVocab), tp = _comm.Size;
        Grow(ref _send, k);
        Grow(ref _heap, k);
        Grow(ref _recv, k * tp);
        LocalReductions.TopK(row, _start, p.Temperature, _send.AsSpan(0, k), _heap);
        _comm.AllGather<Candidate>(_send.AsSpan(0, k), _recv);
        var merged = _recv.AsSpan(0, k * tp);
        merged.Sort(Candidate.CompareMostLikelyFirst);
        int real = 0;
        while (real < merged.Length && merged[real].Id != int.MaxValue) real++;
        int n = Math.Min(k, real);
        Grow(ref _scratch, n);
        return CandidateSampling.Sample(merged[..n], p.TopP, p.MinP, u, _scratch);
    }

    private int SampleFull(ReadOnlySpan<float> row, SamplingParams p, double u)
    {
        float T = p.Temperature;
        Grow(ref _f, 1);
        _f[0] = LocalReductions.Max(row, T);
        _comm.AllReduce(_f.AsSpan(0, 1), ReduceOp.Max);
        float max = _f[0];
        if (float.IsNegativeInfinity(max) || float.IsNaN(max)) return 0;
        float threshold = float.NegativeInfinity;
        long tieBudget = long.MaxValue, tieOffset = 0;
        if (p.TopP < 1)
        {
            double total = AllSum(LocalReductions.Mass(row, T, max, float.NegativeInfinity, 0));
            double target = p.TopP * total;
            // largest θ with mass(x ≥ θ) ≥ target, searched over the ordered bit patterns of floats
            long lo = Key(float.NegativeInfinity), hi = Key(max) + 1;
            while (hi - lo > 1)
            {
                long mid = lo + (hi - lo) / 2;
                if (AllSum(LocalReductions.Mass(row, T, max, FromKey(mid), 0)) >= target) lo = mid;
                else hi = mid;
            }
            threshold = FromKey(lo);
            double above = AllSum(LocalReductions.Mass(row, T, max, FromKey(lo + 1), 0));
            // ties at θ join in id order until the mass reaches the target
            int myTies = 0;
            foreach (var v in row) if (v / T == threshold) myTies++;
            Grow(ref _i, 1);
            Grow(ref _iAll, _comm.Size);
            _i[0] = myTies;
            _comm.AllGather<int>(_i.AsSpan(0, 1), _iAll);
            double wt = LocalReductions.Weight(threshold * T, T, max), run = above;
            long allTies = 0, needed = 0;
            for (int r = 0; r < _comm.Size; r++) allTies += _iAll[r];
            while (run < target && needed < allTies) { run += wt; needed++; }
            for (int r = 0; r < _comm.Rank; r++) tieOffset += _iAll[r];
            tieBudget = needed;
        }
        // this rank's kept mass, in id order
        double mine = 0;
        long tieIndex = tieOffset;
        foreach (var v in row)
            if (Keep(v / T, threshold, ref tieIndex, tieBudget, max, p.MinP, out double w)) mine += w;
        Grow(ref _d, 1);
        Grow(ref _dAll, _comm.Size);
        _d[0] = mine;
        _comm.AllGather<double>(_d.AsSpan(0, 1), _dAll);
        double keptMass = 0;
        for (int r = 0; r < _comm.Size; r++) keptMass += _dAll[r];
        double goal = u * keptMass, prefix = 0;
        int owner = -1;
        for (int r = 0; r < _comm.Size; r++)
        {
            if (_dAll[r] > 0) owner = r;
            if (prefix + _dAll[r] > goal && _dAll[r] > 0) { owner = r; break; }
            prefix += _dAll[r];
        }
        double id = -1;
        if (owner == _comm.Rank)
        {
            double running = prefix;
            tieIndex = tieOffset;
            for (int c = 0; c < row.Length; c++)
                if (Keep(row[c] / T, threshold, ref tieIndex, tieBudget, max, p.MinP, out double w))
                {
                    id = _start + c;
                    running += w;
                    if (running > goal) break;
                }
        }
        // the owner claims the token; the claim count checks that every rank drew the same number (the same seed)
        Grow(ref _d, 2);
        (_d[0], _d[1]) = id >= 0 ? (id, 1) : (0, 0);
        _comm.AllReduce(_d.AsSpan(0, 2), ReduceOp.Sum);
        if (_d[1] != 1)
            throw new TpLlmException($"{_d[1]} ranks claimed the sampled token instead of one: the ranks sampled with different random numbers (different seeds?)");
        return (int)_d[0];
    }

    private static bool Keep(float x, float threshold, ref long tieIndex, long tieBudget, float max, float minP, out double w)
    {
        w = 0;
        if (x < threshold || float.IsNaN(x)) return false;
        if (x == threshold && tieBudget != long.MaxValue && tieIndex++ >= tieBudget) return false;
        w = Math.Exp((double)x - max);
        return w >= minP && w > 0;
    }

    private double AllSum(double v)
    {
        Grow(ref _d, 1);
        _d[0] = v;
        _comm.AllReduce(_d.AsSpan(0, 1), ReduceOp.Sum);
        return _d[0];
    }

    private static long Key(float f)
    {
        int b = BitConverter.SingleToInt32Bits(f);
        return b >= 0 ? b : (long)(b ^ 0x7FFFFFFF);
    }

    private static float FromKey(long k)
    {
        int b = (int)k;
        return BitConverter.Int32BitsToSingle(b >= 0 ? b : b ^ 0x7FFFFFFF);
    }

    /// <summary>
    /// Log-probabilities (temperature 1) of <paramref name="chosen"/> and the <paramref name="topN"/>
    /// most likely tokens of each row, without gathering the vocabulary; with <paramref name="rank"/>, also the
    /// chosen token's rank (one more all-reduce: each rank counts its logits above the chosen one).
    /// </summary>
    public TokenLogprobs[] Logprobs(ReadOnlySpan<float> local, int B, ReadOnlySpan<int> chosen, int topN, bool rank = false)
    {
        Grow(ref _f, 2 * B);
        for (int b = 0; b < B; b++)
        {
            var row = Row(local, b);
            _f[b] = LocalReductions.Max(row, 1f);
            int c = chosen[b] - _start;
            _f[B + b] = c >= 0 && c < _valid ? row[c] : float.NegativeInfinity;
        }
        _comm.AllReduce(_f.AsSpan(0, 2 * B), ReduceOp.Max);
        Grow(ref _d, B);
        for (int b = 0; b < B; b++) _d[b] = LocalReductions.SumExp(Row(local, b), _f[b]);
        _comm.AllReduce(_d.AsSpan(0, B), ReduceOp.Sum);
        var result = new TokenLogprobs[B];
        int n = Math.Min(topN, SamplableVocab), tp = _comm.Size;
        for (int b = 0; b < B; b++)
        {
            double lse = _f[b] + Math.Log(_d[b]);
            var top = Array.Empty<(int, float)>();
            if (n > 0)
            {
                Grow(ref _send, n);
                Grow(ref _heap, n);
                Grow(ref _recv, n * tp);
                LocalReductions.TopK(Row(local, b), _start, 1f, _send.AsSpan(0, n), _heap);
                _comm.AllGather<Candidate>(_send.AsSpan(0, n), _recv);
                var merged = _recv.AsSpan(0, n * tp);
                merged.Sort(Candidate.CompareMostLikelyFirst);
                top = new (int, float)[n];
                for (int i = 0; i < n; i++) top[i] = (merged[i].Id, (float)(merged[i].Value - lse));
            }
            result[b] = new TokenLogprobs(chosen[b], (float)(_f[B + b] - lse), top);
        }
        if (rank)
        {
            Grow(ref _d, B);
            for (int b = 0; b < B; b++)
            {
                int above = 0;
                foreach (var v in Row(local, b)) if (v > _f[B + b]) above++;
                _d[b] = above;
            }
            _comm.AllReduce(_d.AsSpan(0, B), ReduceOp.Sum);
            for (int b = 0; b < B; b++) result[b] = result[b] with { Rank = (int)_d[b] + 1 };
        }
        return result;
    }

    private static void Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n) a = new T[n];
    }
}
