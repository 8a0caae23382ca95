using TpLlm.Models;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>
/// The batch's scheduler on its own, with no model: the steps it plans (read back as every rank reads them), and what it
/// does with the tokens a step returns.
/// </summary>
public class SchedulerTests
{
    private const int Vocab = 100, Eos = 99;

    private sealed record Row(int Slot, int Start, int[] Fed, StepPlan.Admission? Admission, bool Samples);

    private static Scheduler New(int slots, int maxPrefill = 0, bool prefixCaching = true, int context = 64)
    {
        var s = new Scheduler(slots, Vocab, [Eos]) { MaxPrefillTokens = maxPrefill, PrefixCaching = prefixCaching };
        s.Start(context);
        return s;
    }

    private static BatchJob Submit(Scheduler s, int[] prompt, int maxNewTokens = 4, CancellationToken ct = default)
    {
        var job = new BatchJob(new GenerationRequest { PromptIds = prompt, MaxNewTokens = maxNewTokens }, null, ct, null);
        s.Submit(job);
        return job;
    }

    // plans a step and reads it back from the wire; then answers each sampled row with `token` (or its slot + 10)
    private static Row[] Step(Scheduler s, int? token = null)
    {
        var wire = new List<int>();
        int n = s.Plan(wire);
        if (n == 0) return [];
        var reader = new StepPlan.Reader(wire.ToArray());
        var rows = new Row[reader.Rows];
        for (int r = 0; r < rows.Length; r++)
        {
            reader.Next(out int slot, out int start, out var fed, out var admission);
            rows[r] = new Row(slot, start, fed.ToArray(), admission, r < reader.SampledRows);
        }
        var picked = rows.Where(r => r.Samples).Select(r => token ?? r.Slot + 10).ToArray();
        s.Complete(picked, null, null);
        return rows;
    }

    // a finished request's result (the scheduler completes it on the calling thread: nothing to wait for)
    private static GenerationResult Result(BatchJob job)
    {
        Assert.True(job.Done.Task.IsCompletedSuccessfully, "the request has not finished");
        return job.Done.Task.Result;
    }

    private static int[] Prompt(int length, int first = 1) => [.. Enumerable.Range(first, length)];

    [Fact]
    public void Prompts_are_fed_in_chunks_within_the_budget_and_sample_only_at_their_last_chunk()
    {
        var s = New(slots: 2, maxPrefill: 4);
        var a = Submit(s, Prompt(10));
        var b = Submit(s, Prompt(3, 50));
        var step = Step(s);
        Assert.Single(step); // A took the whole budget; B waits
        Assert.Equal((0, 0, false), (step[0].Start, step[0].Fed.Length - 4, step[0].Samples));
        Assert.NotNull(step[0].Admission);
        Assert.Equal(1, s.WaitingRequests);

        step = Step(s);
        Assert.Equal([(0, 4, 4, false)], step.Select(r => (r.Slot, r.Start, r.Fed.Length, r.Samples)));
        step = Step(s); // A's last 2 tokens, then B's first 2 in the rest of the budget
        Assert.Equal([(0, 8, 2, true), (1, 0, 2, false)], step.Select(r => (r.Slot, r.Start, r.Fed.Length, r.Samples)).OrderBy(r => r.Slot));
        Assert.Equal([10], a.Tokens);
        step = Step(s); // A decodes its token; B's last prompt token
        Assert.Equal([(0, 10, 1, true), (1, 2, 1, true)], step.Select(r => (r.Slot, r.Start, r.Fed.Length, r.Samples)).OrderBy(r => r.Slot));
        Assert.Equal([10], step.Single(r => r.Slot == 0).Fed); // the token picked last step is fed back
        Assert.Equal(0, s.WaitingRequests);
        Assert.Equal(2, s.ActiveSequences);
    }

    [Fact]
    public void Sequences_end_at_max_tokens_eos_or_a_full_context_and_free_their_slot_for_the_next_request()
    {
        var s = New(slots: 1, context: 8);
        var a = Submit(s, Prompt(3), maxNewTokens: 2);
        var b = Submit(s, Prompt(3, 20), maxNewTokens: 10);
        var c = Submit(s, Prompt(5, 40), maxNewTokens: 10);
        Step(s);
        Step(s);
        Assert.True(a.Done.Task.IsCompletedSuccessfully);
        Assert.Equal(FinishReason.MaxTokens, Result(a).Reason);
        Assert.Equal([10, 10], Result(a).Tokens);
        Step(s); // B admitted to the freed slot
        Step(s, token: Eos);
        Assert.Equal(FinishReason.Eos, Result(b).Reason);
        Assert.Equal([10, Eos], Result(b).Tokens);
        for (int i = 0; i < 3; i++) Step(s); // C: 5 prompt tokens + 3 generated fill the context of 8
        Assert.Equal((FinishReason.ContextFull, 3), (Result(c).Reason, Result(c).Tokens.Length));
        Assert.Equal(0, s.ActiveSequences);
        Assert.Empty(Step(s));
        Assert.Equal(2 + 2 + 3, s.GeneratedTokensTotal);
    }

    [Fact]
    public void A_request_reuses_the_cached_prefix_of_a_finished_sequence_only_with_prefix_caching()
    {
        foreach (bool caching in new[] { true, false })
        {
            var s = New(slots: 2, prefixCaching: caching);
            var first = Submit(s, Prompt(20), maxNewTokens: 2);
            Step(s);
            Step(s); // done: slot 0 holds the prompt and the first generated token (10)
            var follow = Submit(s, [.. Prompt(20), 10, 10, 77]);
            var step = Step(s);
            var row = Assert.Single(step);
            Assert.Equal(caching ? (0, 21) : (1, 0), (row.Slot, row.Start)); // without caching: the slot holding fewer tokens
            Assert.Equal(caching ? 21 : 0, s.PrefixCacheHitTokensTotal);
            Assert.Equal(23 - row.Start, row.Fed.Length);
            Assert.Equal(-1, row.Admission!.CopyFrom);
            Step(s);
            Step(s);
            Step(s);
            Assert.Equal(caching ? 21 : 0, Result(follow).CachedPromptTokens);
        }
    }

    [Fact]
    public void A_prompt_sharing_a_running_sequences_prefix_copies_it_and_one_still_prefilling_is_waited_for()
    {
        var s = New(slots: 3);
        var running = Submit(s, Prompt(30), maxNewTokens: 20);
        var twin = Submit(s, [.. Prompt(30), 5]);
        var rows = Step(s);
        Assert.Equal(0, Assert.Single(rows).Slot);
        Assert.Equal(1, s.WaitingRequests); // it shares ≥ MinSharedPrefix tokens with the prompt being prefilled: it waits
        rows = Step(s);
        var admitted = rows.Single(r => r.Admission is not null);
        Assert.Equal((0, 30), (admitted.Admission!.CopyFrom, admitted.Start)); // copied from slot 0, whose prompt is computed now
        Assert.Equal([5], admitted.Fed);
        Assert.False(running.Done.Task.IsCompleted);
        Assert.False(twin.Done.Task.IsCompleted);
    }

    [Fact]
    public void Cancelled_requests_end_before_admission_or_mid_prefill_and_invalid_ones_fail_alone()
    {
        var s = New(slots: 2, maxPrefill: 4);
        using var early = new CancellationTokenSource();
        using var mid = new CancellationTokenSource();
        early.Cancel();
        var a = Submit(s, Prompt(3), ct: early.Token);
        var bad = Submit(s, [3, Vocab + 5]);
        var b = Submit(s, Prompt(12), ct: mid.Token);
        var c = Submit(s, Prompt(2, 60), maxNewTokens: 1);
        var step = Step(s);
        Assert.Equal((FinishReason.Cancelled, 0), (Result(a).Reason, Result(a).Tokens.Length));
        var e = Assert.IsType<InvalidRequestException>(bad.Done.Task.Exception!.InnerException);
        Assert.Contains($"token id {Vocab + 5}", e.Message);
        Assert.Equal(0, Assert.Single(step).Slot); // B, the first valid request
        mid.Cancel();
        step = Step(s); // B is dropped before its next chunk; C takes the budget
        Assert.Equal((FinishReason.Cancelled, 0), (Result(b).Reason, Result(b).Tokens.Length));
        var row = Assert.Single(step);
        Assert.Equal(60, row.Fed[0]);
        Assert.Equal((FinishReason.MaxTokens, 1), (Result(c).Reason, Result(c).Tokens.Length));
    }
}
