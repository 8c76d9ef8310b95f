using System.CommandLine;
using Engine.Cli;
using Engine.Cli.Commands;

var root = new RootCommand("engine: a pure-managed CNN engine that trains, prunes and quantizes a small network on MNIST.")
{
    TrainCommand.Create(),
    EvalCommand.Create(),
    PruneCommand.Create(),
};

ParseResult parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        CliErrors.Report(error.Message);
    }
    Console.Error.WriteLine("Run 'engine --help' for usage.");
    return ExitCodes.Usage;
}
return parse.Invoke();
