using TpLlm.Models;
using TpLlm.Sampling;

namespace TpLlm.Cli;

/// <summary>Packs generation results into ints so replicas can send them to world rank 0.</summary>
public static class ResultCodec
{
    /// <summary>[count, then per result: index, reason, n, tokens…, hasLogprobs, per token: id, logprob bits, top n, (id, bits)…].</summary>
    public static int[] Encode(IReadOnlyList<(int Index, GenerationResult Result)> results)
    {
        var o = new List<int> { results.Count };
        foreach (var (i, r) in results)
        {
            o.Add(i); o.Add((int)r.Reason); o.Add(r.Tokens.Length); o.AddRange(r.Tokens);
            o.Add(r.Logprobs is null ? 0 : 1);
            if (r.Logprobs is null) continue;
            foreach (var lp in r.Logprobs)
            {
                o.Add(lp.Id); o.Add(BitConverter.SingleToInt32Bits(lp.Logprob)); o.Add(lp.Top.Length);
                foreach (var (id, v) in lp.Top) { o.Add(id); o.Add(BitConverter.SingleToInt32Bits(v)); }
            }
        }
        return o.ToArray();
    }

    /// <summary>Inverse of <see cref="Encode"/>.</summary>
    public static IEnumerable<(int Index, GenerationResult Result)> Decode(int[] data)
    {
        int p = 0, n = data[p++];
        for (int k = 0; k < n; k++)
        {
            int index = data[p++];
            var reason = (FinishReason)data[p++];
            int len = data[p++];
            var tokens = data[p..(p + len)];
            p += len;
            TokenLogprobs[]? lps = null;
            if (data[p++] == 1)
            {
                lps = new TokenLogprobs[len];
                for (int t = 0; t < len; t++)
                {
                    int id = data[p++];
                    float v = BitConverter.Int32BitsToSingle(data[p++]);
                    var top = new (int, float)[data[p++]];
                    for (int j = 0; j < top.Length; j++) { top[j] = (data[p], BitConverter.Int32BitsToSingle(data[p + 1])); p += 2; }
                    lps[t] = new TokenLogprobs(id, v, top);
                }
            }
            yield return (index, new GenerationResult(tokens, reason, lps));
        }
    }
}
