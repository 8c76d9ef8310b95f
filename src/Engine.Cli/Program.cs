using System.CommandLine;
using System.CommandLine.Help;
using Engine.Cli;
using Engine.Cli.Commands;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Redirected output is read by programs and logs: no wrapping at an imagined 80-column terminal.
    AnsiConsole.Profile.Width = 240;
}

// The root is named "engine" whatever the executable is called (Engine.Cli.dll, or the "engine" tool command), so help
// and usage lines name the command the documents use. A plain Command needs the help and version options added.
var root = new Command("engine", "engine: a pure-managed CNN engine that trains, prunes and quantizes a small network on MNIST.")
{
    new HelpOption(),
    new VersionOption(),
    TrainCommand.Create(),
    EvalCommand.Create(),
    PruneCommand.Create(),
    QuantizeCommand.Create(),
    ExportCommand.Create(),
    BenchCommand.Create(),
    DemoCommand.Create(),
};

Interruption.Install();
ParseResult parse = root.Parse(args);
// With --help the parser keeps quiet about tokens it did not match ("engine prun --help" would print the root help and
// succeed): an unknown command is bad usage whatever else the line holds.
List<string> errors = [.. parse.Errors.Select(e => CliErrors.Plain(e.Message))
    .Concat(parse.Errors.Count == 0 ? parse.UnmatchedTokens.Select(t => $"Unrecognized command or argument '{t}'.") : [])];
if (parse.UnmatchedTokens.Count > 0)
{
    // "engine no-such-command": the unknown command is the problem, not that no (known) command was given.
    errors.RemoveAll(e => e.StartsWith("Required command was not provided", StringComparison.Ordinal));
}
foreach (string error in errors)
{
    CliErrors.Report(error);
}
if (errors.Count > 0)
{
    Console.Error.WriteLine("Run 'engine --help' for usage.");
    return ExitCodes.Usage;
}
return parse.Invoke();
