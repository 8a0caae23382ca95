using System.CommandLine;
using TpLlm.Checkpoints;
using TpLlm.Models;
using TpLlm.Parallel;

namespace TpLlm.Cli;

/// <summary><c>tpllm inspect</c>: print each rank's shard plan without loading weights.</summary>
public static class InspectCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var cmd = new Command("inspect", "print each rank's shard plan (tensor, rows or columns, bytes) and the padded vocab");
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            using var folder = ModelOpener.Open(common.ModelPath(r));
            var c = folder.Config;
            int tp = r.GetValue(common.Tp), align = r.GetValue(common.Align);
            var head = r.GetValue(common.Head);
            var ck = folder.Checkpoint;
            string headTensor = LmHeadLoader.SourceTensor(ck, c.TieWordEmbeddings);
            bool tied = headTensor == LmHeadLoader.EmbeddingName;
            StdOut.Out.WriteLine($"model {folder.Path}: {c.ModelType}, H={c.HiddenSize}, I={c.IntermediateSize}, layers={c.NumLayers}, heads={c.NumHeads}/{c.NumKvHeads} (head_dim {c.HeadDim}), V={c.VocabSize}, tied={c.TieWordEmbeddings}");
            var quant = common.QuantizationOf(r);
            var plans = Enumerable.Range(0, tp).Select(rank => ShardPlan.For(c, tp, rank, align, DecoderModel.InputGroup(c, ck, quant))).ToArray();
            var v = plans[0].Vocab;
            StdOut.Out.WriteLine($"tp={tp}: V_pad = roundUp({v.VocabSize}, {tp}·{align}) = {v.PaddedVocabSize}, {v.ShardSize} vocab rows per rank; LM head {head}, reads '{headTensor}'{(tied ? " (shared with the embedding shard)" : "")}");
            int d = c.HeadDim;
            foreach (var p in plans)
            {
                StdOut.Out.WriteLine($"rank {p.Rank}: q heads [{p.HeadStart}, {p.HeadStart + p.HeadCount}), kv heads [{p.KvHeadStart}, {p.KvHeadStart + p.KvHeadCount}), mlp columns [{p.MlpStart}, {p.MlpStart + p.MlpCount}), vocab rows [{p.Vocab.Start(p.Rank)}, {p.Vocab.End(p.Rank)}) of which {p.Vocab.RealRows(p.Rank)} real");
                var rows = new List<(string Tensor, string Slice, long Bytes)>
                {
                    (LmHeadLoader.EmbeddingName, $"rows [{p.Vocab.Start(p.Rank)}, {p.Vocab.RealEnd(p.Rank)}) + {p.Vocab.ShardSize - p.Vocab.RealRows(p.Rank)} padding", Bytes(ck, LmHeadLoader.EmbeddingName, (long)p.Vocab.ShardSize * c.HiddenSize)),
                };
                if (!tied || head == LmHeadStrategy.RowParallel)
                    rows.Add((headTensor, head == LmHeadStrategy.ColumnParallel ? $"rows [{p.Vocab.Start(p.Rank)}, {p.Vocab.RealEnd(p.Rank)})" : $"columns [{p.Rank * c.HiddenSize / tp}, {(p.Rank + 1) * c.HiddenSize / tp})",
                        Bytes(ck, headTensor, head == LmHeadStrategy.ColumnParallel ? (long)p.Vocab.ShardSize * c.HiddenSize : (long)c.VocabSize * c.HiddenSize / tp)));
                string l0 = "model.layers.0.";
                rows.Add((l0 + "self_attn.q_proj.weight", $"rows [{p.HeadStart * d}, {(p.HeadStart + p.HeadCount) * d})", Bytes(ck, l0 + "self_attn.q_proj.weight", (long)p.HeadCount * d * c.HiddenSize)));
                foreach (var kv in new[] { "k", "v" })
                    rows.Add(($"{l0}self_attn.{kv}_proj.weight", $"rows [{p.KvHeadStart * d}, {(p.KvHeadStart + p.KvHeadCount) * d})", Bytes(ck, $"{l0}self_attn.{kv}_proj.weight", (long)p.KvHeadCount * d * c.HiddenSize)));
                rows.Add((l0 + "self_attn.o_proj.weight", $"columns [{p.HeadStart * d}, {(p.HeadStart + p.HeadCount) * d})", Bytes(ck, l0 + "self_attn.o_proj.weight", (long)p.HeadCount * d * c.HiddenSize)));
                foreach (var g in new[] { "gate", "up" })
                    rows.Add(($"{l0}mlp.{g}_proj.weight", $"rows [{p.MlpStart}, {p.MlpStart + p.MlpCount})", Bytes(ck, $"{l0}mlp.{g}_proj.weight", (long)p.MlpCount * c.HiddenSize)));
                rows.Add((l0 + "mlp.down_proj.weight", $"columns [{p.MlpStart}, {p.MlpStart + p.MlpCount})", Bytes(ck, l0 + "mlp.down_proj.weight", (long)p.MlpCount * c.HiddenSize)));
                foreach (var (t, s, b) in rows) StdOut.Out.WriteLine($"  {t,-42} {s,-40} {b,12:N0} B");
                long layerBytes = rows.Where(x => x.Tensor.StartsWith(l0, StringComparison.Ordinal)).Sum(x => x.Bytes);
                long total = rows.Where(x => !x.Tensor.StartsWith(l0, StringComparison.Ordinal)).Sum(x => x.Bytes) + layerBytes * c.NumLayers;
                StdOut.Out.WriteLine($"  (layers 1..{c.NumLayers - 1} alike) rank {p.Rank} total ≈ {total:N0} B of weights");
            }
            return 0;
        });
        return cmd;
    }

    private static long Bytes(IWeightSource ck, string tensor, long elements) => ck.Tensor(tensor).DType.Bytes(elements);
}
