using System.CommandLine;
using TpLlm.Checkpoints;
using TpLlm.Models;

namespace TpLlm.Cli;

/// <summary><c>tpllm logits</c>: write the logits of every position to a safetensors file.</summary>
public static class LogitsCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var common = new CommonOptions();
        var ids = new Option<string>("--ids") { Description = "comma-separated token ids", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "safetensors file to write (tensor 'logits' [T, V], f32)", Required = true };
        var cmd = new Command("logits", "compute logits [T, V] for every position of a token sequence") { ids, output };
        common.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var tokens = CommonOptions.ParseIds(r.GetValue(ids)!);
            var path = common.ModelPath(r);
            var options = common.ModelOptions(r, 1);
            using var folder = ModelOpener.Open(path);
            var c = folder.Config;
            if (options.MaxContext == 0) options = options with { MaxContext = Math.Min(c.MaxPositionEmbeddings, Math.Max(tokens.Length, 16)) };
            if (tokens.Length > options.MaxContext)
                throw new TpLlmException($"--ids has {tokens.Length} tokens; the context holds {options.MaxContext}");
            foreach (var id in tokens)
                if (id >= c.VocabSize) throw new TpLlmException($"--ids: token id {id} is outside the vocabulary [0, {c.VocabSize})");
            int T = tokens.Length, V = c.VocabSize;
            var logits = RankLauncher.Run(1, r.GetValue(common.Tp), (comm, _) =>
            {
                using var model = DecoderModel.Load(c, FaultInjection.Wrap(folder.Checkpoint, comm.Rank), comm, options);
                var hidden = new float[T * c.HiddenSize];
                model.Forward(tokens, [new SequenceChunk(0, 0, T)], hidden, allPositions: true);
                var result = new float[T * V];
                model.Head.Forward(hidden, T, result);
                return result.Select(BitConverter.SingleToInt32Bits).ToArray();
            })?[0].Select(BitConverter.Int32BitsToSingle).ToArray();
            if (logits is null) return 0; // not world rank 0
            var file = r.GetValue(output)!;
            SafetensorsWriter.WriteF32(file, [("logits", [T, V], logits)]);
            StdOut.Err.WriteLine($"tpllm: wrote logits [{T}, {V}] to {file}");
            return 0;
        });
        return cmd;
    }
}
