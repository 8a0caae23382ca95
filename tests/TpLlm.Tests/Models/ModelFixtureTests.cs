using TpLlm.Checkpoints;
using TpLlm.Distributed;
using TpLlm.Models;
using TpLlm.Tensors;

namespace TpLlm.Tests.Models;

/// <summary>
/// Whole-model logits against the references, at several tp: transformers' (llama3-mini, fortune-llama), and a float64
/// pass cross-checked by llama.cpp (qwen3-mini, gemma3-mini).
/// </summary>
public class ModelFixtureTests
{
    public static IEnumerable<object?[]> Cases()
    {
        foreach (var model in new[] { "llama3-mini", "fortune-llama", "qwen3-mini", "gemma3-mini" })
        {
            for (int tp = 1; tp <= 4; tp++)
                yield return [model, tp, 1, null];
            // several compute threads per rank: matmul rows and attention heads split over them (unevenly, some idle)
            yield return [model, 1, 3, null];
            yield return [model, 2, 3, null];
            // the narrower kernel paths, which processors without AVX-512 (or without vectors) take
            foreach (var path in new[] { KernelPath.Vector256, KernelPath.Scalar }.Where(p => p != KernelPaths.Best && KernelPaths.IsSupported(p)))
                yield return [model, 2, 2, path];
        }
    }

    internal static (string Folder, string Reference, int Prompts) Fixture(string model) => model switch
    {
        "llama3-mini" => (Paths.Llama3Mini, Paths.Llama3Reference, 2),
        "fortune-llama" => (Paths.FortuneLlama, Paths.FortuneReference, 3),
        _ => (NewArchitectureTests.Folder(model), Path.Combine(NewArchitectureTests.Folder(model), "reference.safetensors"), 3),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_reference_at_every_position(string model, int tp, int threads, KernelPath? path)
    {
        var (folder, refPath, prompts) = Fixture(model);
        using var reference = new SafetensorsFile(refPath);
        var config = ModelConfig.Load(folder);
        using var ck = Checkpoint.Open(folder);
        for (int p = 0; p < prompts; p++)
        {
            var ids = reference.ReadI64($"prompt{p}.input_ids").Select(i => (int)i).ToArray();
            var expected = reference.ReadF32($"prompt{p}.logits");
            int T = ids.Length, V = config.VocabSize;
            var outputs = ThreadRanks.Run(tp, comm =>
            {
                using var m = DecoderModel.Load(config, ck, comm, new ModelOptions { ComputeThreads = threads, KernelPath = path });
                var hidden = new float[T * config.HiddenSize];
                m.Forward(ids, [new SequenceChunk(0, 0, T)], hidden, allPositions: true);
                var logits = new float[T * V];
                m.Head.Forward(hidden, T, logits);
                return logits;
            });
            foreach (var logits in outputs)
            {
                float max = 0;
                for (int i = 0; i < logits.Length; i++) max = Math.Max(max, Math.Abs(logits[i] - expected[i]));
                Assert.True(max <= 1e-4f, $"{model} tp={tp} threads={threads} {path} prompt {p}: max abs error {max} (acceptance bound 1e-3; we hold 1e-4)");
            }
        }
    }
}
