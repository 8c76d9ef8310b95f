using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Cli.Report;
using Engine.Compression;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Pruning;
using Engine.Statistics;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine compress</c>: searches per-layer pruning amounts and weight bit widths for the smallest (or fastest) int8
/// model within an accuracy budget (<see cref="CompressionSearch"/>), prints every candidate and the Pareto front, plots
/// them, and writes the chosen model (docs/command-line.md, "compress"; docs/compression.md).
/// </summary>
internal static class CompressCommand
{
    public static Command Create()
    {
        var defaults = new CompressionOptions();
        var model = new Option<string>("--model") { Description = "Float model file to compress.", Required = true };
        var stats = new Option<string?>("--stats") { Description = "Gradient statistics from 'train --track-grad-stats' (needed by gradient-stability and taylor)." };
        var maxDrop = new Option<double>("--max-accuracy-drop")
        {
            Description = "The most test accuracy the chosen model may lose against the float model, in percentage points.",
            DefaultValueFactory = _ => defaults.MaxAccuracyDrop,
        };
        maxDrop.Validators.Add(r =>
        {
            if (CommonOptions.TryGetValue(r, out double v) && !(v >= 0 && v <= 100))
            {
                r.AddError("--max-accuracy-drop must be between 0 and 100 points.");
            }
        });
        var objective = new Option<string>("--objective") { Description = "What to make small: size (file bytes) or latency (batch time).", DefaultValueFactory = _ => "size" };
        objective.Validators.Add(r =>
        {
            if (CommonOptions.TryGetValue(r, out string? v) && v is not ("size" or "latency"))
            {
                r.AddError($"--objective: '{v}' is not one of size, latency.");
            }
        });
        var criterion = new Option<string>("--criterion")
        {
            Description = "How the neurons to prune are chosen at each step: gradient-stability, l1, l2, taylor or random.",
            DefaultValueFactory = _ => NeuronImportance.Name(defaults.Criterion),
        };
        var amounts = new Option<string>("--amounts")
        {
            Description = "The pruning ladder: fractions of a layer's neurons, comma-separated, increasing, each above 0 and below 1.",
            DefaultValueFactory = _ => string.Join(",", defaults.Amounts.Skip(1).Select(a => a.ToString(CultureInfo.InvariantCulture))),
        };
        var bits = new Option<string>("--bits")
        {
            Description = "The bit ladder below 8: weight bit widths, comma-separated, decreasing, each 4 to 7.",
            DefaultValueFactory = _ => string.Join(",", defaults.Bits.Skip(1)),
        };
        var fineTune = CommonOptions.Between(new Option<int>("--finetune-epochs") { Description = "Epochs of fine-tuning after every pruning step.", DefaultValueFactory = _ => defaults.FineTuneEpochs }, 1, 100);
        var refine = CommonOptions.Between(new Option<int>("--refine-epochs") { Description = "Epochs of fine-tuning when a rejected step is tried again.", DefaultValueFactory = _ => defaults.RefineEpochs }, 1, 100);
        var distill = CommonOptions.InRange(new Option<float>("--distill-weight")
        {
            Description = "Weight of the float model's soft targets in fine-tuning (knowledge distillation); 0 for labels only.",
            DefaultValueFactory = _ => defaults.DistillationWeight,
        }, 0f, 1f);
        var qatEpochs = CommonOptions.Between(new Option<int>("--qat-epochs")
        {
            Description = "Epochs of quantization-aware training for every candidate with weights below 8 bits (0: calibration only).",
            DefaultValueFactory = _ => defaults.QatEpochs,
        }, 0, 100);
        var maxCandidates = CommonOptions.Between(new Option<int>("--max-candidates") { Description = "The most candidates to build and measure.", DefaultValueFactory = _ => defaults.MaxCandidates }, 1, 1000);
        var batch = CommonOptions.Between(new Option<int>("--batch-size") { Description = "Samples per timed batch (latency objective and speed-up).", DefaultValueFactory = _ => defaults.BatchSize }, 1, 4096);
        var output = new Option<string?>("--out") { Description = "Write the chosen int8 model here." };
        var plot = new Option<string?>("--plot") { Description = "Write the picture of the candidates and the Pareto front (PNG) here." };
        var seed = CommonOptions.Seed("Seed for fine-tuning and the random criterion.", 1UL);
        var data = CommonOptions.Data();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var command = new Command("compress", "Search per-layer pruning and weight bits for the smallest or fastest int8 model within an accuracy budget.")
        {
            model, stats, maxDrop, objective, criterion, amounts, bits, fineTune, refine, distill, qatEpochs, maxCandidates, batch, output, plot, seed, data, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            double[] ladder = AnalyzeCommand.ParseList(parse.GetValue(amounts)!, "--amounts", AnalyzeCommand.ParseFraction);
            int[] bitLadder = AnalyzeCommand.ParseList<int>(parse.GetValue(bits)!, "--bits", t => AnalyzeCommand.ParseBits(t) is int b && b < 8 ? b : null);
            if (ladder.Zip(ladder.Skip(1)).Any(p => !(p.Second > p.First)))
            {
                throw new UsageException("--amounts: the ladder must increase.");
            }
            if (bitLadder.Zip(bitLadder.Skip(1)).Any(p => !(p.Second < p.First)))
            {
                throw new UsageException("--bits: the ladder must decrease.");
            }
            var options = new CompressionOptions
            {
                MaxAccuracyDrop = parse.GetValue(maxDrop),
                Objective = parse.GetValue(objective) == "latency" ? CompressionObjective.Latency : CompressionObjective.Size,
                Criterion = CommonOptions.ParseCriterion(parse.GetValue(criterion)!, "--criterion"),
                Amounts = [0, .. ladder],
                Bits = [8, .. bitLadder],
                FineTuneEpochs = parse.GetValue(fineTune),
                RefineEpochs = parse.GetValue(refine),
                DistillationWeight = parse.GetValue(distill),
                QatEpochs = parse.GetValue(qatEpochs),
                MaxCandidates = parse.GetValue(maxCandidates),
                BatchSize = parse.GetValue(batch),
                Seed = parse.GetValue(seed),
            };
            return Run(parse.GetValue(model)!, parse.GetValue(stats), options, parse.GetValue(output), parse.GetValue(plot), parse.GetValue(data)!,
                parse.GetValue(threads), parse.GetValue(json));
        }));
        return command;
    }

    private static int Run(string modelPath, string? statsPath, CompressionOptions options, string? outPath, string? plotPath, string dataDirectory, int threads, bool json)
    {
        if (outPath is not null)
        {
            CommonOptions.RequireWritableTarget(outPath, "--out");
        }
        if (plotPath is not null)
        {
            CommonOptions.RequireWritableTarget(plotPath, "--plot");
        }
        AnalyzeCommand.RequireStatisticsOption(statsPath, options.Criterion);
        CommonOptions.RequireModelFile(modelPath, "--model");
        CommonOptions.RequireDataDirectory(dataDirectory);
        FloatModel loaded = ModelFile.LoadFloat(modelPath);
        loaded.Network.Threads = threads;
        GradientStatistics? statistics = AnalyzeCommand.LoadStatistics(statsPath, modelPath, loaded);
        MnistDataset trainSet = MnistDataset.Load(dataDirectory, MnistSplit.Train);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        var train = BatchIterator.Shuffled(trainSet, 64, options.Seed, 0, loaded.InputMean, loaded.InputStd, BatchIterator.DefaultMaxShift);
        var calibration = BatchIterator.Sequential(trainSet, 100, loaded.InputMean, loaded.InputStd);
        var test = BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        ConsoleReport.Line($"Measuring each layer's sensitivity ({NeuronImportance.Name(options.Criterion)} pruning at {string.Join(", ", options.Amounts.Skip(1).Select(a => FormattableString.Invariant($"{100 * a:0.##}%")))}; " +
                           $"weights at {string.Join(", ", options.Bits)} bits)...");
        CompressionResult result;
        using (Interruption.Cooperate())
        {
            SensitivityReport sensitivity = SensitivityAnalysis.Run(loaded.Network, loaded.InputShape, statistics, test,
                new SensitivityOptions { Amounts = [.. options.Amounts.Skip(1)], Bits = options.Bits, Criterion = options.Criterion, Seed = options.Seed },
                cancel: Interruption.Token);
            ConsoleReport.Line($"Searching (budget {options.MaxAccuracyDrop.ToString(CultureInfo.InvariantCulture)} points, objective {Name(options.Objective)})...");
            result = CompressionSearch.Run(loaded.Network, loaded.InputShape, loaded.InputMean, loaded.InputStd, statistics, sensitivity,
                train, calibration, test, options, predictor => TimeBatch(predictor, modelPath, testSet, options.BatchSize, dataDirectory, new CallTiming.Durations(0.3, 0.1)),
                line => ConsoleReport.Line("  " + line), Interruption.Token);
        }
        double searchSeconds = clock.Elapsed.TotalSeconds;

        ConsoleReport.Table($"Candidates (accuracy on {testSet.Count} test digits; float {ConsoleReport.Percent(result.FloatAccuracy)}, {new FileInfo(modelPath).Length:N0} bytes)",
            ["#", "move", "layers (neurons / bits)", "accuracy", "drop (points)", "bytes", $"ms per batch of {options.BatchSize}", "within budget"],
            result.Candidates.Select(c => Row(c, result)));
        ConsoleReport.Table($"Pareto front ({Name(options.Objective)} against accuracy)",
            ["#", "move", "layers (neurons / bits)", "accuracy", "drop (points)", "bytes", $"ms per batch of {options.BatchSize}", "within budget"],
            result.ParetoFront.Select(c => Row(c, result)));
        if (plotPath is not null)
        {
            CompressionPictures.ParetoFront(result, options, new FileInfo(modelPath).Length, plotPath);
            ConsoleReport.Line($"Wrote {plotPath}.");
        }
        if (result.Chosen is not { } chosen || result.ChosenNetwork is not { } chosenNetwork)
        {
            throw new InvalidOperationException($"no candidate stays within {options.MaxAccuracyDrop.ToString(CultureInfo.InvariantCulture)} points of the float model's " +
                                                $"{ConsoleReport.Percent(result.FloatAccuracy)} (even the 8-bit model loses more); nothing written.");
        }

        // The reported speed-up: the float model and the chosen one timed once more, longer, one after the other.
        var durations = new CallTiming.Durations(1.5, 0.3);
        double floatSeconds = TimeBatch(Predictor.FromNetwork(loaded.Network, loaded.InputShape, loaded.InputMean, loaded.InputStd, new PredictorOptions { Threads = threads }),
            modelPath, testSet, options.BatchSize, dataDirectory, durations);
        double chosenSeconds = TimeBatch(Predictor.FromNetwork(chosenNetwork, new PredictorOptions { Threads = threads }), modelPath, testSet, options.BatchSize, dataDirectory, durations);
        double drop = chosen.AccuracyDrop(result.FloatAccuracy);
        // Against the float model file as given (its metadata included), the file a user would otherwise ship.
        long floatBytes = new FileInfo(modelPath).Length;
        double sizeRatio = (double)floatBytes / chosen.Bytes, speedup = floatSeconds / chosenSeconds;
        ConsoleReport.Line($"Chosen #{chosen.Index}: {Layers(chosen)}; {ConsoleReport.Percent(chosen.Accuracy)} ({drop:+0.00;-0.00;0.00} points against float), " +
                           $"{chosen.Bytes:N0} bytes ({sizeRatio:F1}x smaller), batch of {options.BatchSize} in {1000 * chosenSeconds:F2} ms against {1000 * floatSeconds:F2} ms " +
                           $"({speedup:F2}x faster); {result.Candidates.Count} candidates in {searchSeconds:F0} s.");
        if (outPath is not null)
        {
            // Exactly the bytes that were measured: the candidate's size is the file's size.
            QuantizedModelFile.Save(chosenNetwork, outPath);
            ConsoleReport.Line($"Wrote {outPath} ({new FileInfo(outPath).Length:N0} bytes).");
        }
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["accuracy_drop"] = Math.Round(drop, 4),
                ["size_ratio"] = sizeRatio,
                ["speedup"] = speedup,
                ["seconds"] = searchSeconds,
                ["objective"] = Name(options.Objective),
                ["max_accuracy_drop"] = options.MaxAccuracyDrop,
                ["float_accuracy"] = result.FloatAccuracy,
                ["accuracy"] = chosen.Accuracy,
                ["float_bytes"] = floatBytes,
                ["bytes"] = chosen.Bytes,
                ["float_batch_ms"] = 1000 * floatSeconds,
                ["batch_ms"] = 1000 * chosenSeconds,
                ["batch_size"] = options.BatchSize,
                ["layers"] = LayersJson(chosen),
                ["candidates"] = new JsonArray(result.Candidates.Select(c => (JsonNode)CandidateJson(c, result)).ToArray()),
                ["pareto_front"] = new JsonArray(result.ParetoFront.Select(c => (JsonNode)c.Index).ToArray()),
                ["out"] = outPath,
            });
        }
        return ExitCodes.Success;
    }

    private static string Name(CompressionObjective objective) => objective == CompressionObjective.Size ? "size" : "latency";

    /// <summary>Median seconds of one batch through <paramref name="predictor"/> on the first test digits (<see cref="CallTiming"/>).</summary>
    private static double TimeBatch(Predictor predictor, string modelPath, MnistDataset testSet, int batch, string dataDirectory, CallTiming.Durations durations)
    {
        return CallTiming.MeasurePredict(predictor, modelPath, testSet, batch, dataDirectory, durations, minimumCalls: 5).MedianMs / 1000;
    }

    private static string Layers(CompressionCandidate c) =>
        string.Join(", ", c.Settings.Select(s => FormattableString.Invariant($"{s.Layer} {s.Neurons}/{s.Bits}b")));

    private static IReadOnlyList<string> Row(CompressionCandidate c, CompressionResult result) =>
    [
        c.Index.ToString(CultureInfo.InvariantCulture), c.Move, Layers(c), ConsoleReport.Percent(c.Accuracy),
        c.AccuracyDrop(result.FloatAccuracy).ToString("F2", CultureInfo.InvariantCulture), c.Bytes.ToString("N0", CultureInfo.InvariantCulture),
        (1000 * c.BatchSeconds).ToString("F2", CultureInfo.InvariantCulture), c.WithinBudget ? "yes" : "no",
    ];

    private static JsonArray LayersJson(CompressionCandidate c) => new(c.Settings.Select(s => (JsonNode)new JsonObject
    {
        ["layer"] = s.Layer,
        ["amount"] = s.Amount,
        ["neurons"] = s.Neurons,
        ["bits"] = s.Bits,
    }).ToArray());

    private static JsonObject CandidateJson(CompressionCandidate c, CompressionResult result) => new()
    {
        ["index"] = c.Index,
        ["move"] = c.Move,
        ["accuracy"] = c.Accuracy,
        ["accuracy_drop"] = Math.Round(c.AccuracyDrop(result.FloatAccuracy), 4),
        ["bytes"] = c.Bytes,
        ["batch_ms"] = 1000 * c.BatchSeconds,
        ["parameters"] = c.Parameters,
        ["multiply_accumulates"] = c.MultiplyAccumulates,
        ["within_budget"] = c.WithinBudget,
        ["layers"] = LayersJson(c),
    };
}
