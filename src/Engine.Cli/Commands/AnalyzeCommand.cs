using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Cli.Report;
using Engine.Compression;
using Engine.Data;
using Engine.IO;
using Engine.Pruning;
using Engine.Statistics;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine analyze</c>: per-layer sensitivity of a float model (<see cref="SensitivityAnalysis"/>): test accuracy when
/// only one layer is pruned, and when only one layer's weights are quantized; a table, a plot, and JSON
/// (docs/command-line.md, "analyze").
/// </summary>
internal static class AnalyzeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Float model file to analyze.", Required = true };
        var stats = new Option<string?>("--stats") { Description = "Gradient statistics from 'train --track-grad-stats' (needed by gradient-stability and taylor)." };
        var criterion = new Option<string>("--criterion")
        {
            Description = "How the neurons to prune are chosen: gradient-stability, l1, l2, taylor or random.",
            DefaultValueFactory = _ => "gradient-stability",
        };
        var amounts = new Option<string>("--amounts") { Description = "Fractions of a layer's neurons to prune, comma-separated, each above 0 and below 1.", DefaultValueFactory = _ => "0.25,0.5,0.75" };
        var bits = new Option<string>("--bits") { Description = "Weight bit widths to try, comma-separated, each 4 to 8.", DefaultValueFactory = _ => "8,6,4" };
        var perTensor = new Option<bool>("--per-tensor") { Description = "Quantize weights per tensor (asymmetric) instead of per output channel (symmetric)." };
        var plot = new Option<string?>("--plot") { Description = "Write the sensitivity picture (PNG) here." };
        var seed = CommonOptions.Seed("Seed for the random criterion.", 1UL);
        var data = CommonOptions.Data();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var command = new Command("analyze", "Per-layer sensitivity: accuracy with only one layer pruned, or only one layer quantized.")
        {
            model, stats, criterion, amounts, bits, perTensor, plot, seed, data, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var options = new SensitivityOptions
            {
                Criterion = CommonOptions.ParseCriterion(parse.GetValue(criterion)!, "--criterion"),
                Amounts = ParseList(parse.GetValue(amounts)!, "--amounts", ParseFraction),
                Bits = ParseList(parse.GetValue(bits)!, "--bits", ParseBits),
                PerChannel = !parse.GetValue(perTensor),
                Seed = parse.GetValue(seed),
            };
            return Run(parse.GetValue(model)!, parse.GetValue(stats), options, parse.GetValue(plot), parse.GetValue(data)!, parse.GetValue(threads), parse.GetValue(json));
        }));
        return command;
    }

    internal static T[] ParseList<T>(string text, string option, Func<string, T?> parse) where T : struct
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new UsageException($"{option}: give at least one value.");
        }
        return parts.Select(p => parse(p) ?? throw new UsageException($"{option}: '{p}' is not allowed here.")).ToArray();
    }

    internal static double? ParseFraction(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && v < 1 ? v : null;

    internal static int? ParseBits(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= Quantization.QuantizationOptions.MinWeightBits
        && v <= Quantization.QuantizationOptions.MaxWeightBits ? v : null;

    /// <summary>A criterion that ranks by gradient statistics needs --stats: a usage error (exit 2) before any file is read.</summary>
    internal static void RequireStatisticsOption(string? statsPath, PruningCriterion criterion)
    {
        if (statsPath is null && NeuronImportance.NeedsStatistics(criterion))
        {
            throw new UsageException($"--stats is required by the {NeuronImportance.Name(criterion)} criterion (write it with 'engine train --track-grad-stats FILE'), or choose --criterion l1.");
        }
    }

    /// <summary>The statistics of --stats, checked against the model they were recorded on; null when none were given.</summary>
    internal static GradientStatistics? LoadStatistics(string? statsPath, string modelPath, FloatModel loaded)
    {
        if (statsPath is null)
        {
            return null;
        }
        CommonOptions.RequireStatisticsFile(statsPath, "--stats");
        return PruneCommand.LoadStatistics(statsPath, modelPath, loaded);
    }

    private static int Run(string modelPath, string? statsPath, SensitivityOptions options, string? plotPath, string dataDirectory, int threads, bool json)
    {
        if (plotPath is not null)
        {
            CommonOptions.RequireWritableTarget(plotPath, "--plot");
        }
        RequireStatisticsOption(statsPath, options.Criterion);
        CommonOptions.RequireModelFile(modelPath, "--model");
        CommonOptions.RequireDataDirectory(dataDirectory);
        FloatModel loaded = ModelFile.LoadFloat(modelPath);
        loaded.Network.Threads = threads;
        GradientStatistics? statistics = LoadStatistics(statsPath, modelPath, loaded);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        var test = BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd);

        var clock = Stopwatch.StartNew();
        SensitivityReport report;
        using (Interruption.Cooperate())
        {
            report = SensitivityAnalysis.Run(loaded.Network, loaded.InputShape, statistics, test, options, line => ConsoleReport.Line("  " + line), Interruption.Token);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        ConsoleReport.Line($"Float model: {ConsoleReport.Percent(report.BaselineAccuracy)} on {testSet.Count} test digits; sensitivity measured in {seconds:F1} s.");
        string[] headers =
        [
            "layer", "neurons", "parameters",
            .. options.Amounts.Select(a => FormattableString.Invariant($"pruned {100 * a:0.##}%")),
            .. options.Bits.Select(b => $"{b}-bit weights"),
        ];
        ConsoleReport.Table($"Test accuracy with only one layer compressed (pruning by {NeuronImportance.Name(options.Criterion)}, no fine-tuning; " +
                            $"{(options.PerChannel ? "per-channel" : "per-tensor")} weights, activations float)", headers,
            report.Layers.Select(l => (IReadOnlyList<string>)
            [
                l.Layer, l.Neurons.ToString("N0", CultureInfo.InvariantCulture), l.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                .. options.Amounts.Select(a => l.Pruned.Where(p => p.Amount == a).Select(p => Cell(p.Accuracy, report.BaselineAccuracy)).FirstOrDefault() ?? "-"),
                .. options.Bits.Select(b => l.Quantized.Where(q => q.Bits == b).Select(q => Cell(q.Accuracy, report.BaselineAccuracy)).FirstOrDefault() ?? "-"),
            ]));
        if (plotPath is not null)
        {
            CompressionPictures.Sensitivity(report, NeuronImportance.Name(options.Criterion), plotPath);
            ConsoleReport.Line($"Wrote {plotPath}.");
        }
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["baseline_accuracy"] = report.BaselineAccuracy,
                ["criterion"] = NeuronImportance.Name(options.Criterion),
                ["per_channel"] = options.PerChannel,
                ["layers"] = new JsonArray(report.Layers.Select(l => (JsonNode)new JsonObject
                {
                    ["layer"] = l.Layer,
                    ["neurons"] = l.Neurons,
                    ["parameters"] = l.Parameters,
                    ["pruned"] = new JsonArray(l.Pruned.Select(p => (JsonNode)new JsonObject
                    {
                        ["amount"] = p.Amount,
                        ["neurons_kept"] = p.NeuronsKept,
                        ["accuracy"] = p.Accuracy,
                        ["accuracy_drop"] = Math.Round(100.0 * (report.BaselineAccuracy - p.Accuracy), 4),
                    }).ToArray()),
                    ["quantized"] = new JsonArray(l.Quantized.Select(q => (JsonNode)new JsonObject
                    {
                        ["bits"] = q.Bits,
                        ["accuracy"] = q.Accuracy,
                        ["accuracy_drop"] = Math.Round(100.0 * (report.BaselineAccuracy - q.Accuracy), 4),
                    }).ToArray()),
                }).ToArray()),
                ["seconds"] = seconds,
                ["plot"] = plotPath,
            });
        }
        return ExitCodes.Success;
    }

    private static string Cell(float accuracy, float baseline) =>
        FormattableString.Invariant($"{100 * accuracy:F2}% ({100 * (accuracy - baseline):+0.00;-0.00;0.00})");
}
