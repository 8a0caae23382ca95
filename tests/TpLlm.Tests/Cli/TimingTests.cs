using TpLlm.Cli.Bench;
using TpLlm.Distributed;

namespace TpLlm.Tests.Cli;

public class TimingTests
{
    [Fact]
    public void Interleaved_steps_take_turns_starting_from_a_different_step_each_round_and_keep_their_own_times()
    {
        var calls = new List<int>();
        Action Step(int k, int sleepMs) => () => { calls.Add(k); if (sleepMs > 0) Thread.Sleep(sleepMs); };
        var times = Timing.MeasureInterleaved(new SingleRankCommunicator(), [Step(0, 150), Step(1, 0), Step(2, 0)], runs: 4);
        // a warm-up of each, then rounds 0 1 2 | 1 2 0 | 2 0 1 | 0 1 2
        Assert.Equal([0, 1, 2, 0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2], calls);
        Assert.All(times, t => Assert.Equal(4, t.Runs));
        // the slow step's time is its own (150 ms against nothing: room for a loaded machine's delays)
        Assert.InRange(times[0].MinMs, 149, double.MaxValue);
        Assert.InRange(times[1].MedianMs, 0, 149);
        Assert.InRange(times[2].MedianMs, 0, 149);
        Assert.True(times[0].MinMs <= times[0].MedianMs && times[0].MedianMs <= times[0].MaxMs);
    }

    [Fact]
    public void Without_a_run_count_the_slowest_step_sets_the_rounds_within_5_to_50()
    {
        var fast = Timing.MeasureInterleaved(new SingleRankCommunicator(), [() => { }, () => { }], runs: 0);
        Assert.All(fast, t => Assert.Equal(50, t.Runs));
        var slow = Timing.MeasureInterleaved(new SingleRankCommunicator(), [() => { }, () => Thread.Sleep(100)], runs: 0, budgetSeconds: 0.2);
        Assert.All(slow, t => Assert.Equal(5, t.Runs));
    }
}
