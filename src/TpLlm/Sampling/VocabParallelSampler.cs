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
    private Candidate[] _send = [], _recv = [], _heap = [], _merged = [];
    private double[] _d = [], _dAll = [], _scratch = [], _u = [], _target = [];
    private float[] _f = [], _rowMax = [], _threshold = [];
    private int[] _i = [], _iAll = [], _topKRows = [], _fullRows = [];
    private long[] _lo = [], _hi = [], _tieBudget = [], _tieOffset = [];

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

    /// <summary>
    /// Picks one token per row of <paramref name="local"/> <c>[B, V_pad/tp]</c>. The rows' collectives go together: a
    /// step makes the same number of collectives for one sampled row as for many (greedy: one all-gather; top-k: one
    /// more; top-p/min-p/plain: about forty small all-reduces, most of them the threshold search of the longest row).
    /// </summary>
    public void Sample(ReadOnlySpan<float> local, int B, IReadOnlyList<SamplingParams> ps, IReadOnlyList<SplitMix64> rngs, Span<int> tokens)
    {
        Greedy(local, B, tokens);
        Grow(ref _u, B);
        int nk = 0, nf = 0;
        Grow(ref _topKRows, B);
        Grow(ref _fullRows, B);
        for (int b = 0; b < B; b++)
        {
            if (ps[b].IsGreedy) continue;
            _u[b] = rngs[b].NextDouble();
            if (ps[b].TopK > 0) _topKRows[nk++] = b;
            else _fullRows[nf++] = b;
        }
        if (nk > 0) SampleTopK(local, ps, _topKRows.AsSpan(0, nk), tokens);
        if (nf > 0) SampleFull(local, ps, nf, tokens);
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

    // every top-k row's k best of each rank in one all-gather, then each row merged and drawn from
    private void SampleTopK(ReadOnlySpan<float> local, IReadOnlyList<SamplingParams> ps, ReadOnlySpan<int> rows, Span<int> tokens)
    {
        int tp = _comm.Size, total = 0, widest = 0;
        foreach (int b in rows)
        {
            int k = Math.Min(ps[b].TopK, SamplableVocab);
            total += k;
            widest = Math.Max(widest, k);
        }
        Grow(ref _send, total);
        Grow(ref _heap, widest);
        Grow(ref _recv, total * tp);
        Grow(ref _merged, widest * tp);
        int at = 0;
        foreach (int b in rows)
        {
            int k = Math.Min(ps[b].TopK, SamplableVocab);
            LocalReductions.TopK(Row(local, b), _start, ps[b].Temperature, _send.AsSpan(at, k), _heap);
            at += k;
        }
        _comm.AllGather<Candidate>(_send.AsSpan(0, total), _recv);
        at = 0;
        foreach (int b in rows)
        {
            int k = Math.Min(ps[b].TopK, SamplableVocab);
            var merged = _merged.AsSpan(0, k * tp);
            for (int r = 0; r < tp; r++) _recv.AsSpan(r * total + at, k).CopyTo(merged.Slice(r * k, k));
            at += k;
            merged.Sort(Candidate.CompareMostLikelyFirst);
            int real = 0;
            while (real < merged.Length && merged[real].Id != int.MaxValue) real++;
            int n = Math.Min(k, real);
            Grow(ref _scratch, n);
            tokens[b] = CandidateSampling.Sample(merged[..n], ps[b].TopP, ps[b].MinP, _u[b], _scratch);
        }
    }

    // the rows without top-k, in lockstep: each collective carries one number per row
    private void SampleFull(ReadOnlySpan<float> local, IReadOnlyList<SamplingParams> ps, int n, Span<int> tokens)
    {
        var rows = _fullRows;
        int tp = _comm.Size;
        Grow(ref _f, n);
        Grow(ref _rowMax, n);
        Grow(ref _lo, n);
        Grow(ref _hi, n);
        Grow(ref _target, n);
        Grow(ref _threshold, n);
        Grow(ref _tieBudget, n);
        Grow(ref _tieOffset, n);
        Grow(ref _d, 2 * n);
        Grow(ref _dAll, n * tp);
        Grow(ref _i, n);
        Grow(ref _iAll, n * tp);
        for (int j = 0; j < n; j++) _f[j] = LocalReductions.Max(Row(local, rows[j]), ps[rows[j]].Temperature);
        _comm.AllReduce(_f.AsSpan(0, n), ReduceOp.Max);
        bool anyTopP = false;
        for (int j = 0; j < n; j++)
        {
            _rowMax[j] = _f[j];
            _threshold[j] = float.NegativeInfinity;
            (_tieBudget[j], _tieOffset[j]) = (long.MaxValue, 0);
            if (Alive(j) && ps[rows[j]].TopP < 1) anyTopP = true;
        }
        bool TopP(int j) => Alive(j) && ps[rows[j]].TopP < 1;
        bool Alive(int j) => !float.IsNegativeInfinity(_rowMax[j]) && !float.IsNaN(_rowMax[j]);
        if (anyTopP)
        {
            for (int j = 0; j < n; j++) _d[j] = TopP(j) ? LocalReductions.Mass(Row(local, rows[j]), ps[rows[j]].Temperature, _rowMax[j], float.NegativeInfinity, 0) : 0;
            _comm.AllReduce(_d.AsSpan(0, n), ReduceOp.Sum);
            for (int j = 0; j < n; j++)
            {
                _target[j] = ps[rows[j]].TopP * _d[j];
                // the same range for every row (above the row's max the mass is 0, below the target): the search takes
                // the same 32 steps for any number of rows
                (_lo[j], _hi[j]) = (Key(float.NegativeInfinity), TopP(j) ? Key(float.PositiveInfinity) + 1 : Key(float.NegativeInfinity) + 1);
            }
            // largest θ with mass(x ≥ θ) ≥ target, searched over the ordered bit patterns of floats, every row at once
            while (true)
            {
                bool searching = false;
                for (int j = 0; j < n; j++)
                {
                    bool active = _hi[j] - _lo[j] > 1;
                    searching |= active;
                    _d[j] = active ? LocalReductions.Mass(Row(local, rows[j]), ps[rows[j]].Temperature, _rowMax[j], FromKey(_lo[j] + (_hi[j] - _lo[j]) / 2), 0) : 0;
                }
                if (!searching) break;
                _comm.AllReduce(_d.AsSpan(0, n), ReduceOp.Sum);
                for (int j = 0; j < n; j++)
                {
                    if (_hi[j] - _lo[j] <= 1) continue;
                    long mid = _lo[j] + (_hi[j] - _lo[j]) / 2;
                    if (_d[j] >= _target[j]) _lo[j] = mid;
                    else _hi[j] = mid;
                }
            }
            for (int j = 0; j < n; j++)
            {
                if (TopP(j)) _threshold[j] = FromKey(_lo[j]);
                _d[j] = TopP(j) ? LocalReductions.Mass(Row(local, rows[j]), ps[rows[j]].Temperature, _rowMax[j], FromKey(_lo[j] + 1), 0) : 0; // the mass above θ
                int myTies = 0;
                if (TopP(j))
                    foreach (var v in Row(local, rows[j])) if (v / ps[rows[j]].Temperature == _threshold[j]) myTies++;
                _i[j] = myTies;
            }
            _comm.AllReduce(_d.AsSpan(0, n), ReduceOp.Sum);
            _comm.AllGather<int>(_i.AsSpan(0, n), _iAll);
            // ties at θ join in id order until the mass reaches the target
            for (int j = 0; j < n; j++)
            {
                if (!TopP(j)) continue;
                float T = ps[rows[j]].Temperature;
                double wt = LocalReductions.Weight(_threshold[j] * T, T, _rowMax[j]), run = _d[j];
                long allTies = 0, needed = 0;
                for (int r = 0; r < tp; r++) allTies += _iAll[r * n + j];
                while (run < _target[j] && needed < allTies) { run += wt; needed++; }
                for (int r = 0; r < _comm.Rank; r++) _tieOffset[j] += _iAll[r * n + j];
                _tieBudget[j] = needed;
            }
        }
        // each rank's kept mass per row, in id order; the draw's owner finds the token
        for (int j = 0; j < n; j++)
        {
            double mine = 0;
            if (Alive(j))
            {
                var p = ps[rows[j]];
                long tieIndex = _tieOffset[j];
                foreach (var v in Row(local, rows[j]))
                    if (Keep(v / p.Temperature, _threshold[j], ref tieIndex, _tieBudget[j], _rowMax[j], p.MinP, out double w)) mine += w;
            }
            _d[j] = mine;
        }
        _comm.AllGather<double>(_d.AsSpan(0, n), _dAll);
        for (int j = 0; j < n; j++)
        {
            int b = rows[j];
            var p = ps[b];
            double keptMass = 0;
            for (int r = 0; r < tp; r++) keptMass += _dAll[r * n + j];
            double goal = _u[b] * keptMass, prefix = 0;
            int owner = -1;
            for (int r = 0; r < tp; r++)
            {
                double m = _dAll[r * n + j];
                if (m > 0) owner = r;
                if (prefix + m > goal && m > 0) { owner = r; break; }
                prefix += m;
            }
            double id = -1;
            if (Alive(j) && owner == _comm.Rank)
            {
                var row = Row(local, b);
                double running = prefix;
                long tieIndex = _tieOffset[j];
                for (int c = 0; c < row.Length; c++)
                    if (Keep(row[c] / p.Temperature, _threshold[j], ref tieIndex, _tieBudget[j], _rowMax[j], p.MinP, out double w))
                    {
                        id = _start + c;
                        running += w;
                        if (running > goal) break;
                    }
            }
            (_d[2 * j], _d[2 * j + 1]) = id >= 0 ? (id, 1) : (0, 0);
        }
        // the owners claim the tokens; each row's claim count checks that every rank drew the same number (the same seed)
        _comm.AllReduce(_d.AsSpan(0, 2 * n), ReduceOp.Sum);
        for (int j = 0; j < n; j++)
        {
            if (!Alive(j))
            {
                tokens[rows[j]] = 0;
                continue;
            }
            if (_d[2 * j + 1] != 1)
                throw new TpLlmException($"{_d[2 * j + 1]} ranks claimed the sampled token instead of one: the ranks sampled with different random numbers (different seeds?)");
            tokens[rows[j]] = (int)_d[2 * j];
        }
    }

    private static bool Keep(float x, float threshold, ref long tieIndex, long tieBudget, float max, float minP, out double w)
    {
        w = 0;
        if (x < threshold || float.IsNaN(x)) return false;
        if (x == threshold && tieBudget != long.MaxValue && tieIndex++ >= tieBudget) return false;
        w = Math.Exp((double)x - max);
        return w >= minP && w > 0;
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
        if (n > 0)
        {
            // every row's top n of each rank in one all-gather
            Grow(ref _send, B * n);
            Grow(ref _heap, n);
            Grow(ref _recv, B * n * tp);
            Grow(ref _merged, n * tp);
            for (int b = 0; b < B; b++) LocalReductions.TopK(Row(local, b), _start, 1f, _send.AsSpan(b * n, n), _heap);
            _comm.AllGather<Candidate>(_send.AsSpan(0, B * n), _recv);
        }
        for (int b = 0; b < B; b++)
        {
            double lse = _f[b] + Math.Log(_d[b]);
            var top = Array.Empty<(int, float)>();
            if (n > 0)
            {
                var merged = _merged.AsSpan(0, n * tp);
                for (int r = 0; r < tp; r++) _recv.AsSpan(r * B * n + b * n, n).CopyTo(merged.Slice(r * n, n));
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
