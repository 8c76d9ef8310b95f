using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Cli.Demo;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine demo</c>: the whole pipeline on the bundled MNIST subset in one command (train with gradient statistics,
/// a pruning sweep, pruning and fine-tuning, int8, evaluation and timing of the four models), every file written to
/// <c>--out</c>, and one table at the end. The contract is docs/command-line.md, "demo".
/// </summary>
internal static class DemoCommand
{
    /// <summary>The largest --epochs: a demo, not a training campaign (engine train has no such limit).</summary>
    public const int MaxEpochs = 100;

    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Directory for the models, the statistics, demo.json and the report (created if missing).", DefaultValueFactory = _ => "artifacts" };
        var threads = CommonOptions.Threads();
        var seed = CommonOptions.Seed("Seed for initialisation, shuffling, augmentation and fine-tuning.", 1UL);
        var data = CommonOptions.Data();
        var epochs = CommonOptions.Between(new Option<int>("--epochs")
        {
            Description = $"Training epochs of the float model (1 to {MaxEpochs}; default {DemoSettings.DefaultEpochs}, or {DemoSettings.QuickEpochs} with --quick).",
            DefaultValueFactory = _ => DemoSettings.DefaultEpochs,
        }, 1, MaxEpochs);
        var quick = new Option<bool>("--quick")
        {
            Description = $"A run of seconds for checks: {DemoSettings.QuickEpochs} epoch on the first {DemoSettings.QuickTrainingDigits:N0} training digits, a sweep at 0 and 50%, short timings.",
        };
        var json = CommonOptions.Json();
        var command = new Command("demo", "The whole pipeline on MNIST in one command: train, prune, quantize, evaluate and time four models, write them and a report.")
        {
            output, threads, seed, data, epochs, quick, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            bool isQuick = parse.GetValue(quick);
            // --quick changes the default number of epochs, not one given on the command line.
            int epochCount = parse.GetResult(epochs) is { Implicit: false } ? parse.GetValue(epochs) : isQuick ? DemoSettings.QuickEpochs : DemoSettings.DefaultEpochs;
            var settings = new DemoSettings
            {
                OutDirectory = parse.GetValue(output)!,
                DataDirectory = parse.GetValue(data)!,
                Threads = parse.GetValue(threads),
                Seed = parse.GetValue(seed),
                Epochs = epochCount,
                Quick = isQuick,
            };
            return Run(settings, parse.GetValue(json));
        }));
        return command;
    }

    private static int Run(DemoSettings settings, bool json)
    {
        if (File.Exists(settings.OutDirectory))
        {
            throw new UsageException($"--out: '{settings.OutDirectory}' is a file; give a directory (it is created if missing).");
        }
        CommonOptions.RequireDataDirectory(settings.DataDirectory);
        ConsoleReport.Line($"engine demo: train, prune, quantize and time the seed network; everything goes to {Path.GetFullPath(settings.OutDirectory)}.");
        DemoResults results;
        IReadOnlyList<string> files;
        using (Interruption.Cooperate())
        {
            if (ConsoleReport.Interactive)
            {
                (results, files) = AnsiConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(context => DemoPipeline.Run(settings, new DemoProgress(context), Interruption.Token));
            }
            else
            {
                (results, files) = DemoPipeline.Run(settings, new DemoProgress(null), Interruption.Token);
            }
        }

        foreach (string file in files)
        {
            ConsoleReport.Line($"Wrote {file} ({new FileInfo(file).Length:N0} bytes).");
        }
        ConsoleReport.Table($"engine demo: {results.Training.Count} epoch(s), {results.Threads} thread(s), {results.Seconds:F0} s",
            ["model", "test accuracy", "parameters", "file size", "multiply-accumulates", "batch-1 latency", "batch-64 throughput"],
            results.Stages.Take(4).Select(s => (IReadOnlyList<string>)
            [
                // Short cells, so the table fits a terminal of 80 columns; the JSON and demo.json hold the exact figures.
                s.Name, ConsoleReport.Percent((float)s.Accuracy), N(s.Parameters), FormattableString.Invariant($"{s.Bytes / 1024.0:N0} KiB"),
                FormattableString.Invariant($"{s.MultiplyAccumulates / 1e6:F2} M"),
                s.LatencyMs.ToString(s.LatencyMs < 10 ? "F3" : "F1", CultureInfo.InvariantCulture) + " ms",
                s.SamplesPerSecond.ToString("N0", CultureInfo.InvariantCulture) + "/s",
            ]));
        if (json)
        {
            string outDirectory = Path.GetFullPath(settings.OutDirectory);
            ConsoleReport.Json(new JsonObject
            {
                ["stages"] = new JsonArray(results.Stages.Select(s => (JsonNode)new JsonObject
                {
                    ["name"] = s.Name,
                    ["accuracy"] = s.Accuracy,
                    ["parameters"] = s.Parameters,
                    ["bytes"] = s.Bytes,
                    ["latency_ms"] = Math.Round(s.LatencyMs, 4),
                    ["samples_per_second"] = Math.Round(s.SamplesPerSecond, 1),
                    ["multiply_accumulates"] = s.MultiplyAccumulates,
                    ["file"] = Path.Combine(outDirectory, s.File),
                }).ToArray()),
                ["seconds"] = Math.Round(results.Seconds, 1),
                ["out"] = outDirectory,
            });
        }
        return ExitCodes.Success;
    }

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
}
