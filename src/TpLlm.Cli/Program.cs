using System.CommandLine;
using TpLlm.Cli;

var root = new RootCommand("TpLlm: tensor-parallel LLM inference with a column-parallel LM head");
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(PerplexityCommand.Create());
root.Subcommands.Add(QuantizeCommand.Create());
root.Subcommands.Add(TpLlm.Cli.Bench.BenchCommand.Create());
int code = CliRunner.Invoke(root, args);
if (TpLlm.Distributed.Mpi.MpiRuntime.LaunchedByMpirun) TpLlm.Distributed.Mpi.MpiRuntime.Shutdown();
return code;
