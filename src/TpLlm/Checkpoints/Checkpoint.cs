using System.Text.Json;

namespace TpLlm.Checkpoints;

/// <summary>
/// The weights of a Hugging Face model folder: a single <c>model.safetensors</c>, or shards
/// listed by <c>model.safetensors.index.json</c>. Shard files are mapped lazily, on the first
/// lookup of a tensor they hold, so a rank maps only the files its tensors live in. Lookup is
/// by exact name only. Safe to share between in-process ranks.
/// </summary>
public sealed class Checkpoint : IWeightSource
{
    /// <summary>Index file name of sharded checkpoints.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly Dictionary<string, string> _weightMap; // tensor name → file name
    private readonly Dictionary<string, SafetensorsFile> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>The model folder.</summary>
    public string Folder { get; }

    /// <inheritdoc/>
    public string Location => Folder;

    /// <summary>Names of every tensor the checkpoint declares.</summary>
    public IEnumerable<string> TensorNames => _weightMap.Keys;

    private Checkpoint(string folder, Dictionary<string, string> weightMap)
    {
        Folder = folder;
        _weightMap = weightMap;
    }

    /// <summary>Opens the checkpoint in <paramref name="folder"/>.</summary>
    /// <exception cref="CheckpointException">No safetensors checkpoint, or a malformed index.</exception>
    public static Checkpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new CheckpointException($"{folder}: model folder not found");
        var indexPath = Path.Combine(folder, IndexFileName);
        if (IO.InputFile.Exists(indexPath)) return new Checkpoint(folder, ReadIndex(indexPath, folder));
        var single = Path.Combine(folder, SingleFileName);
        if (!IO.InputFile.Exists(single))
            throw new CheckpointException($"{folder}: neither {IndexFileName} nor {SingleFileName} found");
        var ck = new Checkpoint(folder, new Dictionary<string, string>(StringComparer.Ordinal));
        var file = ck.OpenFile(SingleFileName);
        foreach (var name in file.Tensors.Keys) ck._weightMap[name] = SingleFileName;
        return ck;
    }

    private static Dictionary<string, string> ReadIndex(string indexPath, string folder) =>
        JsonInput.ReadFile(indexPath, JsonInput.MaxIndexBytes, 16, root => ReadWeightMap(indexPath, folder, root), (m, e) => new CheckpointException(m, e));

    private static Dictionary<string, string> ReadWeightMap(string indexPath, string folder, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object ||
            !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{indexPath}: expected an object with a 'weight_map' object");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException($"{indexPath}: weight_map['{p.Name}'] is a JSON {p.Value.ValueKind}, expected a file name");
            var file = p.Value.GetString()!;
            if (file.Length == 0 || file.Contains('/') || file.Contains('\\') || file.Contains(".."))
                throw new CheckpointException($"{indexPath}: weight_map['{p.Name}'] = '{file}' is not a file name inside {folder}");
            if (!result.TryAdd(p.Name, file))
                throw new CheckpointException($"{indexPath}: tensor '{p.Name}' is listed twice in weight_map");
        }
        return result;
    }

    /// <summary>True when a tensor of exactly this name exists.</summary>
    public bool Contains(string name) => _weightMap.ContainsKey(name);

    /// <summary>The tensor named exactly <paramref name="name"/> and the file holding it.</summary>
    /// <exception cref="CheckpointException">No such tensor, or its file is missing or malformed.</exception>
    public (SafetensorsFile File, TensorInfo Info) Get(string name)
    {
        if (!_weightMap.TryGetValue(name, out var fileName))
            throw new CheckpointException($"{Folder}: tensor '{name}' not found in the checkpoint");
        var file = OpenFile(fileName);
        if (!file.TryGet(name, out var info))
            throw new CheckpointException($"{file.Path}: tensor '{name}' is listed in {IndexFileName} but not in this file");
        return (file, info);
    }

    /// <inheritdoc/>
    public SourceTensor Tensor(string name)
    {
        var (file, info) = Get(name);
        return new SafetensorsTensor(file, info);
    }

    private SafetensorsFile OpenFile(string fileName)
    {
        lock (_lock)
        {
            if (!_open.TryGetValue(fileName, out var f))
            {
                f = new SafetensorsFile(Path.Combine(Folder, fileName));
                _open[fileName] = f;
            }
            return f;
        }
    }

    /// <summary>Files mapped so far (for tests of shard-only mapping).</summary>
    public IReadOnlyCollection<string> MappedFiles
    {
        get { lock (_lock) return _open.Keys.ToArray(); }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var f in _open.Values) f.Dispose();
            _open.Clear();
        }
    }
}
