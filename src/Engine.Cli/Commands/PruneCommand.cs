using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Pruning;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine prune</c>: prunes a float model by a criterion, fine-tunes it, and reports accuracy and size before and after.
/// Given several criteria or amounts (comma-separated) it runs every combination and prints one table: the experiment.
/// </summary>
internal static class PruneCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Float model file to prune.", Required = true };
        var stats = new Option<string?>("--stats") { Description = "Gradient statistics from 'train --track-grad-stats' (needed by gradient-stability and taylor)." };
        var criterion = new Option<string>("--criterion")
        {
            Description = "gradient-stability, l1, l2, taylor or random; several separated by commas run one after another.",
            DefaultValueFactory = _ => "gradient-stability",
        };
        var amount = new Option<string>("--amount") { Description = "Fraction of neurons to remove, at least 0 and below 1; several separated by commas.", DefaultValueFactory = _ => "0.5" };
        var layers = new Option<string?>("--layers") { Description = "Layers to prune, for example conv1,conv2,fc1 (default: every layer but the last)." };
        var global = new Option<bool>("--global") { Description = "Rank neurons of all selected layers together (per-layer normalised scores) instead of layer by layer." };
        var structured = new Option<bool>("--structured") { Description = "Remove pruned neurons and their edges (default: zero them with masks)." };
        var fineTune = new Option<int>("--finetune-epochs") { Description = "Epochs of fine-tuning after each pruning step.", DefaultValueFactory = _ => 1 };
        fineTune.Validators.Add(r => { if (CommonOptions.TryGetValue(r, out int v) && v < 0) r.AddError("--finetune-epochs must be 0 or more."); });
        var iterations = CommonOptions.Positive(new Option<int>("--iterations") { Description = "Prune in this many steps, fine-tuning after each.", DefaultValueFactory = _ => 1 });
        var fineTuneLr = CommonOptions.InRange(new Option<float>("--finetune-lr") { Description = "Peak learning rate of fine-tuning.", DefaultValueFactory = _ => 0.01f }, 0f, 10f, minExclusive: true);
        var meanThreshold = new Option<double?>("--mean-threshold") { Description = "gradient-stability threshold mode: prune neurons whose mean gradient size, over the layer's average, is below this..." };
        var stdThreshold = new Option<double?>("--std-threshold") { Description = "...and whose gradient spread, over the layer's average, is below this." };
        var seed = CommonOptions.Seed("Seed for the random criterion and fine-tuning.", 1UL);
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var output = new Option<string?>("--out") { Description = "Write the pruned model here (one criterion and amount only)." };
        var report = new Option<string?>("--report") { Description = "Write the results table as Markdown here." };
        var json = CommonOptions.Json();
        var command = new Command("prune", "Prune neurons of a float model and fine-tune it.")
        {
            model, stats, criterion, amount, layers, global, structured, fineTune, iterations, fineTuneLr, meanThreshold, stdThreshold,
            seed, threads, data, output, report, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            PruningCriterion[] criteria = Split(parse.GetValue(criterion)!).Select(c => CommonOptions.ParseCriterion(c, "--criterion")).ToArray();
            double[] amounts = Split(parse.GetValue(amount)!).Select(ParseAmount).ToArray();
            string[]? layerNames = parse.GetValue(layers) is { } l ? Split(l) : null;
            (double, double)? thresholds = (parse.GetValue(meanThreshold), parse.GetValue(stdThreshold)) switch
            {
                (null, null) => null,
                ({ } m, { } s) => (m, s),
                _ => throw new UsageException("--mean-threshold and --std-threshold go together."),
            };
            if (thresholds is not null)
            {
                // Threshold mode replaces --amount and belongs to gradient-stability: anything else would be silently ignored.
                if (criteria.Any(c => c != PruningCriterion.GradientStability))
                {
                    throw new UsageException($"--mean-threshold and --std-threshold apply to the gradient-stability criterion only, not {string.Join(", ", criteria.Where(c => c != PruningCriterion.GradientStability).Select(NeuronImportance.Name))}.");
                }
                if (parse.GetResult(amount) is { Implicit: false })
                {
                    throw new UsageException("--amount does not apply with --mean-threshold and --std-threshold (the thresholds choose the neurons).");
                }
                amounts = [double.NaN];
            }
            var template = new PruningOptions
            {
                Layers = layerNames,
                Global = parse.GetValue(global),
                Structured = parse.GetValue(structured),
                FineTuneEpochs = parse.GetValue(fineTune),
                Iterations = parse.GetValue(iterations),
                FineTuneLearningRate = parse.GetValue(fineTuneLr),
                Thresholds = thresholds,
                Seed = parse.GetValue(seed),
            };
            return Run(parse.GetValue(model)!, parse.GetValue(stats), criteria, amounts, template, parse.GetValue(threads),
                parse.GetValue(data)!, parse.GetValue(output), parse.GetValue(report), parse.GetValue(json));
        }));
        return command;
    }

    private static string[] Split(string text) => text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    // Below 1: pruning every neuron of a layer would disconnect the network.
    private static double ParseAmount(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 && v < 1
            ? v
            : throw new UsageException($"--amount: '{text}' is not a fraction of at least 0 and below 1 (a layer keeps at least one neuron).");

    // The amount as printed and written: the fraction, or the thresholds in threshold mode (the amount is not used there).
    private static string Describe(double amount, PruningOptions options) => options.Thresholds is { } t
        ? FormattableString.Invariant($"thresholds (mean {t.Mean}, std {t.Std})")
        : amount.ToString("P0", CultureInfo.InvariantCulture);

    private static int Run(string modelPath, string? statsPath, PruningCriterion[] criteria, double[] amounts, PruningOptions template,
        int threads, string dataDirectory, string? outPath, string? reportPath, bool json)
    {
        bool grid = criteria.Length * amounts.Length > 1;
        if (grid && outPath is not null)
        {
            throw new UsageException("--out takes one criterion and one amount.");
        }
        if (outPath is not null)
        {
            CommonOptions.RequireWritableTarget(outPath, "--out");
        }
        if (reportPath is not null)
        {
            CommonOptions.RequireWritableTarget(reportPath, "--report");
        }
        if (statsPath is null && criteria.Any(NeuronImportance.NeedsStatistics))
        {
            throw new UsageException("--stats is required by the gradient-stability and taylor criteria (write it with 'engine train --track-grad-stats FILE').");
        }
        CommonOptions.RequireModelFile(modelPath, "--model");
        if (statsPath is not null)
        {
            CommonOptions.RequireStatisticsFile(statsPath, "--stats");
        }
        CommonOptions.RequireDataDirectory(dataDirectory);
        FloatModel loaded = ModelFile.LoadFloat(modelPath);
        loaded.Network.Threads = threads;
        RequirePrunableLayers(template.Layers, loaded, modelPath);
        GradientStatistics? statistics = statsPath is null ? null : LoadStatistics(statsPath, modelPath, loaded);
        MnistDataset trainSet = MnistDataset.Load(dataDirectory, MnistSplit.Train);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        var train = BatchIterator.Shuffled(trainSet, 64, template.Seed, 0, loaded.InputMean, loaded.InputStd, BatchIterator.DefaultMaxShift);
        var test = BatchIterator.Sequential(testSet, 250, loaded.InputMean, loaded.InputStd);

        var results = new List<PruneRun>();
        foreach (double amount in amounts)
        {
            foreach (PruningCriterion criterion in criteria)
            {
                PruningOptions options = template with { Criterion = criterion, Amount = amount };
                ConsoleReport.Line($"Pruning {(options.Thresholds is null ? Describe(amount, options) + " of" : "by " + Describe(amount, options) + ",")} {(options.Layers is null ? "every prunable layer" : string.Join(", ", options.Layers))} " +
                                   $"by {NeuronImportance.Name(criterion)}{(options.Structured ? " (structured)" : " (masks)")}, fine-tuning {options.FineTuneEpochs} epoch(s)...");
                PruningOutcome outcome;
                using (Interruption.Cooperate())
                {
                    outcome = PruningRun.Run(loaded.Network, statistics, options, train, test, loaded.InputShape, cancel: Interruption.Token);
                }
                var run = new PruneRun(criterion, amount, Describe(amount, options), outcome, EffectiveSize(outcome.Network, loaded.InputShape));
                results.Add(run);
                int neuronsBefore = outcome.Before.Sum(l => l.Neurons), neuronsAfter = run.Effective.Sum(l => l.Neurons);
                string stored = options.Structured ? "" : $", {N(outcome.ParametersAfter)} still stored";
                ConsoleReport.Line($"  accuracy {ConsoleReport.Percent(outcome.AccuracyBefore)} -> {ConsoleReport.Percent(outcome.AccuracyAfterPrune)} after pruning -> " +
                                   $"{ConsoleReport.Percent(outcome.AccuracyAfterFineTune)} after fine-tuning; neurons {N(neuronsBefore)} -> {N(neuronsAfter)} " +
                                   $"({N(neuronsBefore - neuronsAfter)} {(options.Structured ? "removed" : "zeroed")}); parameters {N(outcome.ParametersBefore)} -> {N(run.ParametersAfter)} effective{stored}");
            }
        }

        if (!grid)
        {
            PruningOutcome only = results[0].Outcome;
            ConsoleReport.Table(template.Structured ? "Layers" : "Layers ('after': what still acts; zeroed neurons and the weights that read them stay stored)",
                ["layer", "neurons", "neurons after", "parameters", "parameters after", "MACs/sample", "MACs after"],
                only.Before.Zip(results[0].Effective, (b, a) => (IReadOnlyList<string>)[b.Name, N(b.Neurons), N(a.Neurons), N(b.Parameters), N(a.Parameters), N(b.MultiplyAccumulates), N(a.MultiplyAccumulates)]));
            if (outPath is not null)
            {
                ModelFile.SaveFloat(only.Network, outPath, loaded.InputMean, loaded.InputStd, loaded.InputShape,
                    PrunedMetadata(results[0], template));
                ConsoleReport.Line($"Wrote {outPath} ({new FileInfo(outPath).Length} bytes).");
            }
        }
        string table = MarkdownTable(results);
        ConsoleReport.Table("Pruning results", ["criterion", "amount", "before", "after pruning", "after fine-tuning", "parameters (effective)"],
            results.Select(r => (IReadOnlyList<string>)[NeuronImportance.Name(r.Criterion), r.AmountText,
                ConsoleReport.Percent(r.Outcome.AccuracyBefore), ConsoleReport.Percent(r.Outcome.AccuracyAfterPrune),
                ConsoleReport.Percent(r.Outcome.AccuracyAfterFineTune), N(r.ParametersAfter)]));
        if (reportPath is not null)
        {
            // Atomic, as model files are: a crash or Ctrl-C leaves the previous report or the new one, never half of one.
            AtomicFile.Write(reportPath, Encoding.UTF8.GetBytes(table));
            ConsoleReport.Line($"Wrote {reportPath}.");
        }
        if (json)
        {
            var runs = new JsonArray(results.Select(r => (JsonNode)RunJson(r, template)).ToArray());
            JsonObject summary = Measures(results[0]);
            summary["runs"] = runs;
            summary["out"] = outPath;
            ConsoleReport.Json(summary);
        }
        return ExitCodes.Success;
    }

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    private static string MarkdownTable(List<PruneRun> results)
    {
        var text = new StringBuilder();
        text.AppendLine("| amount | criterion | accuracy before | after pruning | after fine-tuning | parameters after (effective) |");
        text.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.AmountText} | {NeuronImportance.Name(r.Criterion)} | {100 * r.Outcome.AccuracyBefore:F2}% | {100 * r.Outcome.AccuracyAfterPrune:F2}% | {100 * r.Outcome.AccuracyAfterFineTune:F2}% | {N(r.ParametersAfter)} |");
        }
        return text.ToString();
    }

    /// <summary>One run of the grid: its settings, its outcome, and the size of what still acts (<see cref="EffectiveSize"/>).</summary>
    private sealed record PruneRun(PruningCriterion Criterion, double Amount, string AmountText, PruningOutcome Outcome, IReadOnlyList<LayerSize> Effective)
    {
        public long ParametersAfter => Effective.Sum(l => l.Parameters);
    }

    // In threshold mode "amount" is null and the thresholds are given instead: the amount was not used.
    private static JsonObject RunJson(PruneRun r, PruningOptions template)
    {
        JsonObject run = Measures(r);
        run.Insert(0, "criterion", NeuronImportance.Name(r.Criterion));
        run.Insert(1, "amount", template.Thresholds is null ? r.Amount : null);
        if (template.Thresholds is { } t)
        {
            run.Insert(2, "mean_threshold", t.Mean);
            run.Insert(3, "std_threshold", t.Std);
        }
        return run;
    }

    private static JsonObject Measures(PruneRun r) => new()
    {
        ["accuracy_before"] = r.Outcome.AccuracyBefore,
        ["accuracy_after_prune"] = r.Outcome.AccuracyAfterPrune,
        ["accuracy_after_finetune"] = r.Outcome.AccuracyAfterFineTune,
        ["parameters_before"] = r.Outcome.ParametersBefore,
        ["parameters_after"] = r.ParametersAfter,
        ["parameters_stored"] = r.Outcome.ParametersAfter,
        ["neurons_before"] = r.Outcome.Before.Sum(l => l.Neurons),
        ["neurons_after"] = r.Effective.Sum(l => l.Neurons),
    };

    private static Dictionary<string, string> PrunedMetadata(PruneRun r, PruningOptions template)
    {
        var metadata = new Dictionary<string, string> { ["pruned_by"] = NeuronImportance.Name(r.Criterion) };
        if (template.Thresholds is { } t)
        {
            metadata["pruned_mean_threshold"] = t.Mean.ToString("R", CultureInfo.InvariantCulture);
            metadata["pruned_std_threshold"] = t.Std.ToString("R", CultureInfo.InvariantCulture);
        }
        else
        {
            metadata["pruned_amount"] = r.Amount.ToString("R", CultureInfo.InvariantCulture);
        }
        return metadata;
    }

    /// <summary>
    /// Layer sizes of what still acts: a neuron whose weights and bias are all zero (a masked one) outputs zero through
    /// ReLU and pooling, so it and the weights that read it count for nothing. This is the size of the network with those
    /// neurons removed (which gives the same outputs); for structured pruning it is the stored size.
    /// </summary>
    private static IReadOnlyList<LayerSize> EffectiveSize(Sequential network, int[] inputShape)
    {
        var zeroed = new PruningPlan();
        foreach (PruningGroup g in PruningGroups.Find(network, inputShape))
        {
            ReadOnlySpan<float> weights = g.Layer.Weight.Value.Data, bias = g.Layer.Bias.Value.Data;
            int row = g.ParametersPerNeuron - 1;
            var dead = new List<int>();
            for (int n = 0; n < g.Neurons && dead.Count < g.Neurons - 1; n++)
            {
                if (bias[n] == 0f && !weights.Slice(n * row, row).ContainsAnyExcept(0f))
                {
                    dead.Add(n);
                }
            }
            zeroed.Remove(g.Name, dead);
        }
        return NetworkSize.Describe(zeroed.Removed.Count == 0 ? network : StructuredPruner.Apply(network, zeroed, inputShape), inputShape);
    }

    /// <summary>--layers must name prunable layers of the model: checked once it is loaded, before any work (exit 2).</summary>
    private static void RequirePrunableLayers(IReadOnlyCollection<string>? layers, FloatModel model, string modelPath)
    {
        if (layers is null)
        {
            return;
        }
        string[] prunable = PruningGroups.Find(model.Network, model.InputShape).Select(g => g.Name).ToArray();
        string[] unknown = layers.Where(l => !prunable.Contains(l)).ToArray();
        if (unknown.Length > 0)
        {
            throw new UsageException($"--layers: {string.Join(", ", unknown.Select(u => $"'{u}'"))} {(unknown.Length == 1 ? "is not a prunable layer" : "are not prunable layers")} of " +
                                     $"{Path.GetFileName(modelPath)} (prunable: {string.Join(", ", prunable)}; the weighted layers but the last, whose outputs are never pruned).");
        }
    }

    /// <summary>
    /// The statistics, if they were recorded on the model's weights: a file of another model (the same architecture,
    /// another seed) is refused naming both files (exit 1); a file from before the hash existed loads with a warning.
    /// </summary>
    internal static GradientStatistics LoadStatistics(string statsPath, string modelPath, FloatModel model)
    {
        IReadOnlyDictionary<string, string> metadata;
        using (var stream = File.OpenRead(statsPath))
        {
            metadata = SafeTensorsFile.ReadMetadata(stream, Path.GetFileName(statsPath));
        }
        if (metadata.TryGetValue("format", out string? format) && format == GradientStatisticsFile.Format)
        {
            if (!metadata.TryGetValue(GradientStatisticsFile.WeightsKey, out string? recorded))
            {
                Console.Error.WriteLine($"engine: warning: {Path.GetFileName(statsPath)} does not record which weights it was taken on (no {GradientStatisticsFile.WeightsKey}: an older file); " +
                                        $"make sure it comes from the training run that wrote {Path.GetFileName(modelPath)}.");
            }
            else if (metadata.TryGetValue("architecture", out string? architecture) && architecture == model.Network.DescribeArchitecture()
                     && recorded != GradientStatisticsFile.WeightsSha256(model.Network))
            {
                throw new InvalidDataException($"{Path.GetFileName(statsPath)} was recorded on other weights than those of {Path.GetFileName(modelPath)} " +
                                               "(the same architecture, another model or training run): give the statistics written by the run that wrote the model.");
            }
        }
        return GradientStatisticsFile.Load(statsPath, model.Network, model.InputShape);
    }
}
