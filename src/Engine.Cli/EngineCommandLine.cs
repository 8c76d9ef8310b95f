using System.CommandLine;
using System.CommandLine.Help;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>The <c>engine</c> command and its subcommands: one place, read by Program and by the tests that check the docs.</summary>
internal static class EngineCommandLine
{
    /// <summary>
    /// The root is named "engine" whatever the executable is called (Engine.Cli.dll, or the "engine" tool command), so
    /// help and usage lines name the command the documents use. A plain Command needs the help and version options added.
    /// </summary>
    public static Command Create() => new("engine", "engine: a pure-managed CNN engine that trains, prunes and quantizes a small network on MNIST.")
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
        AnalyzeCommand.Create(),
        CompressCommand.Create(),
    };
}
