using TpLlm.Models;

namespace TpLlm.Tests.Models;

public class KvCacheTests
{
    [Fact]
    public void Copy_prefix_copies_every_layer_and_head_up_to_the_length_and_nothing_more()
    {
        var cache = new KvCache(layers: 3, slots: 3, maxPositions: 10, kvHeads: 2, headDim: 4);
        for (int l = 0; l < 3; l++)
            for (int h = 0; h < 2; h++)
            {
                var k = cache.Keys(l, 0, h);
                var v = cache.Values(l, 0, h);
                for (int i = 0; i < k.Length; i++) { k[i] = 1000 * l + 100 * h + i; v[i] = -k[i]; }
                cache.Keys(l, 2, h).Fill(7f);
                cache.Values(l, 2, h).Fill(7f);
            }
        cache.SetLength(0, 6);
        cache.CopyPrefix(0, 2, 5);
        Assert.Equal(5, cache.Length(2));
        for (int l = 0; l < 3; l++)
            for (int h = 0; h < 2; h++)
            {
                Assert.Equal(cache.Keys(l, 0, h)[..20].ToArray(), cache.Keys(l, 2, h)[..20].ToArray());
                Assert.Equal(cache.Values(l, 0, h)[..20].ToArray(), cache.Values(l, 2, h)[..20].ToArray());
                Assert.All(cache.Keys(l, 2, h)[20..].ToArray(), x => Assert.Equal(7f, x)); // position 5 on is untouched
            }
        Assert.All(cache.Keys(0, 1, 0).ToArray(), x => Assert.Equal(0f, x)); // other slots too
        var e = Assert.Throws<TpLlmException>(() => cache.CopyPrefix(0, 1, 7));
        Assert.Contains("cannot copy 7 cached positions from slot 0 (holding 6) to slot 1 of 3", e.Message);
        Assert.Throws<TpLlmException>(() => cache.CopyPrefix(1, 1, 0));
        Assert.Throws<TpLlmException>(() => cache.CopyPrefix(0, 3, 1));
    }
}
