using TpLlm.Chat;
using TpLlm.Models;

namespace TpLlm.Tests.Fuzz;

/// <summary>
/// A model folder whose files are not regular files — links to devices that never end, FIFOs that
/// block in open, directories — or are far too large: each fails at once with a message naming the
/// file, without reading without bound, hanging or allocating the file's size. Serial: the allocation bound is on the
/// process-wide counter, which tests running beside it moved past 200 MB once.
/// </summary>
[Collection(SerialCollection.Name)]
public class SpecialFileTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in new[] { "config.json", "generation_config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "tokenizer_config.json" })
            foreach (var kind in new[] { "/dev/zero", "/dev/urandom", "fifo", "directory", "huge" })
                data.Add(file, kind);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_special_or_huge_file_fails_at_once_naming_it(string file, string kind)
    {
        var dir = Paths.TempDir();
        foreach (var f in Directory.GetFiles(Paths.FortuneLlama)) File.CreateSymbolicLink(Path.Combine(dir, Path.GetFileName(f)), f);
        string path = Path.Combine(dir, file);
        File.Delete(path);
        switch (kind)
        {
            case "fifo": Assert.Equal(0, MkFifo(path, 0x1B6)); break;
            case "directory": Directory.CreateDirectory(path); break;
            case "huge": using (var fs = File.Create(path)) fs.SetLength(3L << 30); break; // sparse: 3 GB that take no disk
            default: File.CreateSymbolicLink(path, kind); break;
        }
        long before = GC.GetTotalAllocatedBytes();
        var open = Task.Run(() =>
        {
            using var folder = ModelFolder.Open(dir);
            _ = ChatTemplate.ForFolder(dir);
            using var model = DecoderModel.Load(folder.Config, folder.Checkpoint, new TpLlm.Distributed.SingleRankCommunicator()); // shards are opened here
        });
        // a FIFO used to block in open forever and a device to be read until memory ran out
        var done = await Task.WhenAny(open, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(done == open, $"{file} as {kind}: still loading after 60 s");
        var e = await Assert.ThrowsAnyAsync<TpLlmException>(() => open);
        Assert.Contains(path, e.Message);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 200 << 20, $"{file} as {kind}: allocated {(GC.GetTotalAllocatedBytes() - before) >> 20} MB");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(string path, int mode);
}
