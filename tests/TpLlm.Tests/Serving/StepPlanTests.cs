using TpLlm.Models;
using TpLlm.Sampling;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>The batch step's wire format: what rank 0 plans is what every rank reads.</summary>
public class StepPlanTests
{
    [Fact]
    public void A_step_reads_back_as_it_was_planned_with_the_sampling_rows_first()
    {
        var request = new GenerationRequest
        {
            PromptIds = [5, 6, 7, 8, 9],
            Sampling = new SamplingParams
            {
                Temperature = 0.7f, TopK = 40, TopP = 0.9f, MinP = 0.05f, PresencePenalty = 0.5f, FrequencyPenalty = -0.25f, RepetitionPenalty = 1.1f,
                LogitBias = new Dictionary<int, float> { [3] = -100f, [11] = 2.5f }, MinTokens = 4, Seed = 0xDEADBEEF_12345678UL,
            },
            IgnoreEos = true, StopTokenIds = [42, 43], TopLogprobs = 3, ResponseFormat = ResponseFormat.JsonObject, PromptLogprobs = 2,
        };
        var plain = new GenerationRequest { PromptIds = [1, 2, 3] };
        var plan = new StepPlan();
        plan.Continue(2, 17, [99], samples: true);            // a decode token
        plan.Continue(4, 8, [10, 11, 12], samples: false);    // a prompt chunk that is not its last
        plan.Admit(0, 2, 3, 4, request, samples: true);       // a new request, its first 2 tokens copied from slot 4
        plan.Admit(1, 0, 2, -1, plain, samples: false);       // a new request whose prompt takes more steps
        var wire = new List<int>();
        Assert.Equal(plan.Encode(logprobs: true, wire), wire.Count);

        var reader = new StepPlan.Reader(wire.ToArray());
        Assert.Equal(4, reader.Rows);
        Assert.Equal(2, reader.SampledRows);
        Assert.True(reader.WantLogprobs);
        Assert.Equal([2, 0], plan.SampledSlots); // rank 0 delivers the sampled rows' tokens to these slots, in row order

        reader.Next(out int slot, out int start, out var fed, out var admission);
        Assert.Equal((2, 17), (slot, start));
        Assert.Equal([99], fed.ToArray());
        Assert.Null(admission);

        reader.Next(out slot, out start, out fed, out admission);
        Assert.Equal((0, 2), (slot, start));
        Assert.Equal([7, 8, 9], fed.ToArray());
        Assert.NotNull(admission);
        Assert.Equal(4, admission.CopyFrom);
        var sequence = admission.Sequence;
        Assert.Equal(request.PromptIds, sequence.Prompt);
        Assert.Equal(request.Sampling with { LogitBias = null }, sequence.Sampling with { LogitBias = null });
        Assert.Equal(request.Sampling.LogitBias!.OrderBy(kv => kv.Key), sequence.Sampling.LogitBias!.OrderBy(kv => kv.Key));
        Assert.Equal((true, 3, ResponseFormat.JsonObject, 2), (sequence.IgnoreEos, admission.TopLogprobs, sequence.ResponseFormat, admission.PromptLogprobs));
        Assert.Equal([42, 43], sequence.StopTokenIds);

        reader.Next(out slot, out start, out fed, out admission);
        Assert.Equal((4, 8), (slot, start));
        Assert.Equal([10, 11, 12], fed.ToArray());
        Assert.Null(admission);

        reader.Next(out slot, out start, out fed, out admission);
        Assert.Equal((1, 0), (slot, start));
        Assert.Equal([1, 2], fed.ToArray());
        Assert.NotNull(admission);
        Assert.Equal((-1, -1, false, 0, -1), (admission.CopyFrom, admission.PromptLogprobs, admission.Sequence.IgnoreEos, admission.Sequence.StopTokenIds.Count, admission.TopLogprobs));
        Assert.Equal(plain.Sampling, admission.Sequence.Sampling with { LogitBias = plain.Sampling.LogitBias });
        Assert.Null(admission.Sequence.Sampling.LogitBias);

        plan.Clear();
        Assert.Equal(3, plan.Encode(logprobs: false, wire)); // an empty step: the header alone
        Assert.Equal([0, 0, 0], wire);
    }
}
