using System.CommandLine;
using Engine.Cli;
using Engine.Cli.Commands;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Redirected output is read by programs and logs: no wrapping at an imagined 80-column terminal.
    AnsiConsole.Profile.Width = 240;
}

var root = new RootCommand("engine: a pure-managed CNN engine that trains, prunes and quantizes a small network on MNIST.")
{
    TrainCommand.Create(),
    EvalCommand.Create(),
    PruneCommand.Create(),
    QuantizeCommand.Create(),
};

Interruption.Install();
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
