using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Statistics;
using Engine.Training;
using Spectre.Console;

namespace Engine.Cli.Commands;

/// <summary><c>engine train</c>: trains the seed network on MNIST and writes a float model file.</summary>
internal static class TrainCommand
{
    /// <summary>The largest --batch-size: beyond it a batch no longer fits a sensible working set.</summary>
    public const int MaxBatchSize = 65536;

    public static Command Create()
    {
        var defaults = new TrainingOptions();
        var epochs = CommonOptions.Positive(new Option<int>("--epochs") { Description = "Passes over the training data.", DefaultValueFactory = _ => defaults.Epochs });
        var batchSize = CommonOptions.Between(new Option<int>("--batch-size") { Description = $"Samples per SGD step (1 to {MaxBatchSize}, and at most the training samples).", DefaultValueFactory = _ => defaults.BatchSize }, 1, MaxBatchSize);
        var lr = CommonOptions.InRange(new Option<float>("--lr") { Description = $"Peak learning rate (linear warm-up from lr / 10 over the first {defaults.WarmupEpochs.ToString(CultureInfo.InvariantCulture)} epoch, then cosine to zero).", DefaultValueFactory = _ => defaults.LearningRate }, 0f, 10f, minExclusive: true);
        var momentum = CommonOptions.InRange(new Option<float>("--momentum") { Description = "Nesterov momentum factor (0 for plain SGD).", DefaultValueFactory = _ => defaults.Momentum }, 0f, 0.999f);
        var weightDecay = CommonOptions.InRange(new Option<float>("--weight-decay") { Description = "L2 penalty.", DefaultValueFactory = _ => defaults.WeightDecay }, 0f, 1f);
        var shift = new Option<int>("--max-shift") { Description = "Augmentation: random shifts of up to this many pixels (0 for none).", DefaultValueFactory = _ => BatchIterator.DefaultMaxShift };
        shift.Validators.Add(r => { if (CommonOptions.TryGetValue(r, out int v) && (v < 0 || v > 8)) r.AddError("--max-shift must be between 0 and 8."); });
        var seed = CommonOptions.Seed("Seed for initialisation, shuffling and augmentation.", defaults.Seed);
        var threads = CommonOptions.Threads();
        var data = CommonOptions.Data();
        var output = new Option<string?>("--out") { Description = "Write the trained model here (safetensors, PyTorch state_dict names)." };
        var trackStats = new Option<string?>("--track-grad-stats") { Description = "Track Welford statistics of every gradient while training and write them here (safetensors)." };
        var halfLife = CommonOptions.Between(new Option<int?>("--grad-stats-half-life") { Description = "With --track-grad-stats: weight the statistics' steps exponentially, a step this many steps old weighing half the newest (default: all steps weigh the same).", HelpName = "STEPS" }, 1, StatisticsWindow.MaxHalfLifeSteps);
        var smoothing = CommonOptions.InRange(new Option<float>("--label-smoothing") { Description = "Label smoothing of the cross-entropy target.", DefaultValueFactory = _ => defaults.LabelSmoothing }, 0f, 0.99f);
        var json = CommonOptions.Json();

        var command = new Command("train", "Train the seed network on MNIST.")
        {
            epochs, batchSize, lr, momentum, weightDecay, shift, seed, threads, data, output, trackStats, halfLife, smoothing, json,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var options = new TrainingOptions
            {
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr),
                Momentum = parse.GetValue(momentum),
                WeightDecay = parse.GetValue(weightDecay),
                Seed = parse.GetValue(seed),
                LabelSmoothing = parse.GetValue(smoothing),
            };
            int? halfLifeSteps = parse.GetValue(halfLife);
            if (halfLifeSteps is not null && parse.GetValue(trackStats) is null)
            {
                throw new UsageException("--grad-stats-half-life needs --track-grad-stats FILE: it says how the statistics written there weigh the steps.");
            }
            StatisticsWindow window = halfLifeSteps is int h ? StatisticsWindow.ExponentialHalfLife(h) : StatisticsWindow.All;
            return Run(options, parse.GetValue(shift), parse.GetValue(threads), parse.GetValue(data)!,
                parse.GetValue(output), parse.GetValue(trackStats), window, parse.GetValue(json));
        }));
        return command;
    }

    private static int Run(TrainingOptions options, int maxShift, int threads, string dataDirectory, string? outPath, string? statsPath, StatisticsWindow window, bool json)
    {
        if (outPath is not null)
        {
            CommonOptions.RequireWritableTarget(outPath, "--out");
        }
        if (statsPath is not null)
        {
            CommonOptions.RequireWritableTarget(statsPath, "--track-grad-stats");
        }
        CommonOptions.RequireDataDirectory(dataDirectory);
        MnistDataset trainSet = MnistDataset.Load(dataDirectory, MnistSplit.Train);
        MnistDataset testSet = MnistDataset.Load(dataDirectory, MnistSplit.Test);
        if (options.BatchSize > trainSet.Count)
        {
            throw new UsageException($"--batch-size {options.BatchSize} is more than the {trainSet.Count} training samples in {dataDirectory}.");
        }
        float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
        var train = BatchIterator.Shuffled(trainSet, options.BatchSize, options.Seed, epoch: 0, mean, std, maxShift);
        var test = BatchIterator.Sequential(testSet, 250, mean, std);

        ConsoleReport.Line($"Training {options.Epochs} epochs on {trainSet.Count} digits ({testSet.Count} test), batch {options.BatchSize}, " +
                           $"lr {options.LearningRate}, label smoothing {options.LabelSmoothing}, momentum {options.Momentum}, weight decay {options.WeightDecay}, shifts ±{maxShift}, " +
                           $"seed {options.Seed}, {threads} thread(s), GEMM {GemmF32.Best}.");
        Sequential network = SeedNetwork.Create(options.Seed);
        network.Threads = threads;
        var trainer = new Trainer(network, options);
        int[] inputShape = [1, SeedNetwork.InputSize, SeedNetwork.InputSize];
        GradientStatistics? statistics = statsPath is null ? null : new GradientStatistics(network, inputShape, window);
        var started = DateTime.UtcNow;
        IReadOnlyList<EpochReport> reports;
        using (Interruption.Cooperate())
        {
            reports = ConsoleReport.Interactive
                ? RunWithProgressBar(trainer, train, test, options, statistics)
                : trainer.Run(train, test, new ObserverList(statistics, new PlainLines()), Interruption.Token);
        }
        double seconds = (DateTime.UtcNow - started).TotalSeconds;

        EpochReport last = reports[^1];
        ConsoleReport.Table("Training", ["epoch", "loss", "train acc", "test acc", "seconds", "samples/s"],
            reports.Select(r => (IReadOnlyList<string>)[r.Epoch.ToString(CultureInfo.InvariantCulture), r.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                ConsoleReport.Percent(r.TrainAccuracy), ConsoleReport.Percent(r.TestAccuracy),
                r.Seconds.ToString("F1", CultureInfo.InvariantCulture), r.SamplesPerSecond.ToString("F0", CultureInfo.InvariantCulture)]));
        if (outPath is not null)
        {
            ModelFile.SaveFloat(network, outPath, mean, std, inputShape,
                new Dictionary<string, string> { ["seed"] = options.Seed.ToString(CultureInfo.InvariantCulture), ["test_accuracy"] = last.TestAccuracy.ToString("R", CultureInfo.InvariantCulture) });
            ConsoleReport.Line($"Wrote {outPath} ({new FileInfo(outPath).Length} bytes).");
        }
        if (statsPath is not null)
        {
            GradientStatisticsFile.Save(statistics!, statsPath);
            string weighting = window.IsAll ? "" : $", half-life {window.HalfLifeSteps} steps";
            ConsoleReport.Line($"Wrote gradient statistics over {statistics!.Count} steps{weighting} to {statsPath} ({new FileInfo(statsPath).Length} bytes).");
        }
        ConsoleReport.Line($"Test accuracy {ConsoleReport.Percent(last.TestAccuracy)} after {Epochs(options.Epochs)} in {seconds:F1} s " +
                           $"({reports.Average(r => r.Seconds):F1} s/epoch, {reports.Average(r => r.SamplesPerSecond):F0} samples/s).");
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["test_accuracy"] = last.TestAccuracy,
                ["epochs"] = options.Epochs,
                ["seconds"] = Math.Round(seconds, 3),
                ["seconds_per_epoch"] = Math.Round(reports.Average(r => r.Seconds), 3),
                ["samples_per_second"] = Math.Round(reports.Average(r => r.SamplesPerSecond), 1),
                ["train_loss"] = last.TrainLoss,
                ["parameters"] = network.ParameterCount,
                ["seed"] = options.Seed,
                ["out"] = outPath,
            });
        }
        return ExitCodes.Success;
    }

    private static string Epochs(int n) => n == 1 ? "1 epoch" : $"{n} epochs";

    private static IReadOnlyList<EpochReport> RunWithProgressBar(Trainer trainer, BatchIterator train, BatchIterator test, TrainingOptions options, GradientStatistics? statistics)
    {
        IReadOnlyList<EpochReport> reports = [];
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                ProgressTask task = context.AddTask("epoch 1", maxValue: options.Epochs * (double)train.BatchCount);
                reports = trainer.Run(train, test, new ObserverList(statistics, new ProgressBar(task)), Interruption.Token);
            });
        return reports;
    }

    internal sealed class ProgressBar(ProgressTask task) : ITrainingObserver
    {
        public void OnBatch(in BatchReport r)
        {
            task.Description = Markup.Escape(
                $"epoch {r.Epoch}/{r.Epochs} batch {r.Batch}/{r.Batches} loss {r.Loss:F3} acc {100 * r.Accuracy:F0}% {r.SamplesPerSecond:F0} samples/s");
            task.Increment(1);
        }
    }

    internal sealed class PlainLines : ITrainingObserver
    {
        public void OnBatch(in BatchReport r)
        {
            if (r.Batch % 50 == 0)
            {
                Console.WriteLine(FormattableString.Invariant(
                    $"epoch {r.Epoch}/{r.Epochs} batch {r.Batch}/{r.Batches} loss {r.Loss:F4} acc {100 * r.Accuracy:F1}% lr {r.LearningRate:F4} {r.SamplesPerSecond:F0} samples/s"));
            }
        }

        public void OnEpoch(in EpochReport r) => Console.WriteLine(FormattableString.Invariant(
            $"epoch {r.Epoch}/{r.Epochs} done: loss {r.TrainLoss:F4} train {100 * r.TrainAccuracy:F2}% test {100 * r.TestAccuracy:F2}% {r.Seconds:F1} s {r.SamplesPerSecond:F0} samples/s"));
    }
}
