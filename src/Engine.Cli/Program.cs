using System.CommandLine;
using Engine.Cli;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // Redirected output is read by programs and logs: no wrapping at an imagined 80-column terminal.
    AnsiConsole.Profile.Width = 240;
}

Command root = EngineCommandLine.Create();

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
