using TpLlm.Checkpoints;

namespace TpLlm.Tests.Checkpoints;

public class BadCheckpointTests : IDisposable
{
    private readonly string _dir = Paths.TempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private string File_(string name = "model.safetensors") => Path.Combine(_dir, name);

    private static string Tensor(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private CheckpointException Open(string header, int dataBytes, ulong? declared = null)
    {
        SafetensorsWriter.WriteRaw(File_(), header, new byte[dataBytes], declared);
        return Assert.Throws<CheckpointException>(() => new SafetensorsFile(File_()));
    }

    [Fact]
    public void Truncated_file()
    {
        File.WriteAllBytes(File_(), [1, 2, 3]);
        var e = Assert.Throws<CheckpointException>(() => new SafetensorsFile(File_()));
        Assert.Contains(File_(), e.Message);
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void Truncated_data_section()
    {
        var e = Open("{" + Tensor("w", "F32", "[4, 4]", 0, 64) + "}", 40);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("[0, 64]", e.Message);
        Assert.Contains("40 bytes", e.Message);
    }

    [Fact]
    public void Header_length_past_the_end()
    {
        var e = Open("{}", 0, declared: 1_000_000);
        Assert.Contains("header length 1000000", e.Message);
        Assert.Contains(File_(), e.Message);
    }

    [Fact]
    public void Offsets_out_of_range()
    {
        var e = Open("{" + Tensor("a", "F32", "[2]", 8, 16) + "}", 8);
        Assert.Contains("'a'", e.Message);
        Assert.Contains("[8, 16]", e.Message);
        var e2 = Open("{" + Tensor("a", "F32", "[2]", -8, 0) + "}", 8);
        Assert.Contains("out of range", e2.Message);
    }

    [Fact]
    public void Overlapping_tensors()
    {
        var e = Open("{" + Tensor("a", "F32", "[4]", 0, 16) + "," + Tensor("b", "F32", "[4]", 8, 24) + "}", 24);
        Assert.Contains("'a'", e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Unknown_dtype()
    {
        var e = Open("{" + Tensor("w", "Q4_K", "[2]", 0, 2) + "}", 2);
        Assert.Contains("unknown dtype 'Q4_K'", e.Message);
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void Bytes_not_matching_dtype_times_shape()
    {
        var e = Open("{" + Tensor("w", "BF16", "[3, 5]", 0, 32) + "}", 32);
        Assert.Contains("32 bytes", e.Message);
        Assert.Contains("needs 30 bytes", e.Message);
        Assert.Contains("[3, 5]", e.Message);
    }

    [Fact]
    public void Shape_overflowing_64_bits()
    {
        var e = Open("{" + Tensor("w", "F32", "[4294967296, 4294967296, 4]", 0, 8) + "}", 8);
        Assert.Contains("overflows", e.Message);
    }

    [Fact]
    public void Malformed_json_and_duplicates()
    {
        Assert.Contains("not valid JSON", Open("{\"a\":", 0).Message);
        Assert.Contains("expected an object", Open("[1,2]", 0).Message);
        Assert.Contains("declared twice", Open("{" + Tensor("a", "F32", "[1]", 0, 4) + "," + Tensor("a", "F32", "[1]", 4, 8) + "}", 8).Message);
    }

    [Fact]
    public void Missing_tensor_and_missing_shard()
    {
        SafetensorsWriter.Write(File_(), [new("x", "F32", [1], new byte[4])]);
        using (var ck = Checkpoint.Open(_dir))
        {
            var e = Assert.Throws<CheckpointException>(() => ck.Get("lm_head.weight"));
            Assert.Contains("'lm_head.weight'", e.Message);
            var loader = new WeightLoader(ck);
            var e2 = Assert.Throws<CheckpointException>(() => loader.LoadRows("x", 0, 1, 2, 2));
            Assert.Contains("shape [1]", e2.Message);
            Assert.Contains("[2, 2]", e2.Message);
        }
        File.Delete(File_());
        File.WriteAllText(File_(Checkpoint.IndexFileName), "{\"weight_map\":{\"w\":\"model-00001.safetensors\"}}");
        using var sharded = Checkpoint.Open(_dir);
        var e3 = Assert.Throws<CheckpointException>(() => sharded.Get("w"));
        Assert.Contains("model-00001.safetensors", e3.Message);
        Assert.Contains("not found", e3.Message);
    }

    [Fact]
    public void Missing_folder_and_files()
    {
        Assert.Contains("model folder not found", Assert.Throws<CheckpointException>(() => Checkpoint.Open(Path.Combine(_dir, "nope"))).Message);
        Assert.Contains("neither", Assert.Throws<CheckpointException>(() => Checkpoint.Open(_dir)).Message);
    }

    [Fact]
    public void Sharded_checkpoint_maps_only_the_files_asked_for()
    {
        using var ck = Checkpoint.Open(Paths.FortuneLlama);
        Assert.Empty(ck.MappedFiles);
        ck.Get("model.layers.0.mlp.up_proj.weight");
        Assert.Equal(["model-00002-of-00002.safetensors"], ck.MappedFiles);
    }
}
