using System.Text.Json;
using TpLlm.Checkpoints;
using TpLlm.Parallel;

namespace TpLlm.Tests.Checkpoints;

[Collection(SerialCollection.Name)]
public class ShardMemoryTests
{
    [Fact]
    public void One_rank_of_tp4_allocates_about_its_shard_of_a_1GiB_head()
    {
        const int V = 128256, H = 4096, tp = 4, rank = 1;
        var dir = Paths.TempDir();
        try
        {
            long bytes = (long)V * H * 2;
            var header = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["lm_head.weight"] = new { dtype = "BF16", shape = new long[] { V, H }, data_offsets = new[] { 0L, bytes } },
            });
            var path = Path.Combine(dir, "model.safetensors");
            using (var fs = File.Create(path))
            {
                var h = System.Text.Encoding.UTF8.GetBytes(header);
                fs.Write(BitConverter.GetBytes((ulong)h.Length));
                fs.Write(h);
                fs.SetLength(8 + h.Length + bytes); // sparse: a 1 GiB tensor of zeros
            }
            using var ck = Checkpoint.Open(dir);
            var loader = new WeightLoader(ck);
            var part = new VocabPartition(V, tp);
            long shardBytes = (long)part.ShardSize * H * 2;
            long before = GC.GetAllocatedBytesForCurrentThread();
            var w = LmHeadLoader.LoadVocabShard(loader, "lm_head.weight", part, rank, H);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(part.ShardSize, w.Rows);
            Assert.True(allocated >= shardBytes, $"allocated {allocated} B, less than the shard's {shardBytes} B: the measure missed the weights");
            Assert.True(allocated <= 1.1 * shardBytes, $"allocated {allocated} B for a {shardBytes} B shard (limit 1.1×); the full head is {bytes} B");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
