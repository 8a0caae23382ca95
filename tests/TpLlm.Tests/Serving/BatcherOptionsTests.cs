using TpLlm.Cli;
using TpLlm.Models;
using TpLlm.Parallel;
using TpLlm.Serving;

namespace TpLlm.Tests.Serving;

/// <summary>The batch's options are checked in one place, and nothing in them is overridden silently.</summary>
public class BatcherOptionsTests
{
    private static string Refused(BatcherOptions o) =>
        Assert.Throws<InvalidRequestException>(() => o.ModelOptionsForBatch()).MessageNaming(CliRunner.OptionName);

    [Fact]
    public void The_batch_size_sizes_the_kv_cache_and_conflicting_model_options_are_refused_with_the_option_named()
    {
        Assert.Equal(6, new BatcherOptions { MaxBatch = 6 }.ModelOptionsForBatch().MaxSequences);
        Assert.Equal(6, new BatcherOptions { MaxBatch = 6, Model = new ModelOptions { MaxSequences = 6, ComputeThreads = 3 } }.ModelOptionsForBatch().MaxSequences);
        Assert.Contains("ask for 4 sequences at once but --max-batch is 6", Refused(new BatcherOptions { MaxBatch = 6, Model = new ModelOptions { MaxSequences = 4 } }));
        Assert.Contains("--head RowParallel", Refused(new BatcherOptions { Model = new ModelOptions { HeadStrategy = LmHeadStrategy.RowParallel } }));
        Assert.Contains("--max-batch 0 must be ≥ 1", Refused(new BatcherOptions { MaxBatch = 0 }));
        Assert.Contains("--max-prefill-tokens -2 must be ≥ 0", Refused(new BatcherOptions { MaxPrefillTokens = -2 }));
        Assert.Contains("max_batch 0 must be ≥ 1", Assert.Throws<InvalidRequestException>(() => new BatcherOptions { MaxBatch = 0 }.ModelOptionsForBatch()).Message);
    }

    [Fact]
    public void The_collective_timeout_comes_from_the_options_else_from_TPLLM_COLLECTIVE_TIMEOUT()
    {
        Assert.Equal(TimeSpan.FromSeconds(7), new BatcherOptions { CollectiveTimeout = TimeSpan.FromSeconds(7) }.Timeout);
        Assert.Equal(TpLlm.Distributed.ThreadRanks.ConfiguredTimeout, new BatcherOptions().Timeout);
    }
}
