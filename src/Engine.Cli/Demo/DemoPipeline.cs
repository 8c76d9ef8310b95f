using System.Diagnostics;
using System.Globalization;
using Engine.Cli.Commands;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Pruning;
using Engine.Quantization;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Cli.Demo;

/// <summary>What one <c>engine demo</c> run does: where it reads and writes, and how much work each step gets.</summary>
internal sealed record DemoSettings
{
    /// <summary>
    /// Epochs of the full run: those of <c>engine train</c>'s recipe (docs/training.md), so the demo's float model is the
    /// one the docs describe; the whole run takes about a minute on two cores (docs/command-line.md, "demo").
    /// </summary>
    public const int DefaultEpochs = 10;

    /// <summary>Epochs of a --quick run.</summary>
    public const int QuickEpochs = 1;

    /// <summary>Training digits of a --quick run: the first of the training split, so a test runs the whole pipeline in seconds.</summary>
    public const int QuickTrainingDigits = 1500;

    public required string OutDirectory { get; init; }

    public required string DataDirectory { get; init; }

    public required int Threads { get; init; }

    public required ulong Seed { get; init; }

    public required int Epochs { get; init; }

    public bool Quick { get; init; }

    /// <summary>
    /// Fraction of the neurons of <see cref="PrunedLayers"/> the pruned models lose: 50% of conv2 and fc1 keeps accuracy
    /// within noise of float after one epoch of fine-tuning (docs/pruning.md, "The experiment") and halves conv2, the
    /// layer that holds nearly all the multiply-accumulates.
    /// </summary>
    public double PruneAmount { get; init; } = 0.5;

    public IReadOnlyList<string> PrunedLayers { get; init; } = ["conv2", "fc1"];

    /// <summary>The criteria of the pruned models: the seed's, and the best other one of docs/pruning.md's experiment.</summary>
    public IReadOnlyList<PruningCriterion> FineTunedCriteria { get; init; } = [PruningCriterion.GradientStability, PruningCriterion.Taylor];

    /// <summary>Criteria of the sweep (accuracy straight after pruning, no fine-tuning).</summary>
    public IReadOnlyList<PruningCriterion> SweepCriteria { get; init; } =
        [PruningCriterion.GradientStability, PruningCriterion.L1, PruningCriterion.Taylor, PruningCriterion.Random];

    public IReadOnlyList<double> SweepAmounts => Quick ? [0, PruneAmount] : [0, 0.25, PruneAmount, 0.75, 0.9];

    /// <summary>Training images the int8 activation ranges are observed on (as <c>engine quantize</c>'s default).</summary>
    public int CalibrationSamples => Quick ? 200 : 1000;

    /// <summary>Seconds of timed calls per model and batch size, after an untimed warm-up.</summary>
    public CallTiming.Durations Timing => Quick ? new(0.1, 0.05) : new(1.5, 0.3);
}

/// <summary>
/// The whole pipeline of <c>engine demo</c>: train the seed network with gradient statistics, sweep pruning criteria and
/// amounts, prune and fine-tune with the seed's criterion and with Taylor, quantize the float and the pruned model to
/// int8, evaluate and time the four models through the <see cref="Predictor"/>, and write every file to the output
/// directory. Nothing is written before the last step, so a Ctrl-C (which cancels at the next batch or measurement)
/// leaves no file behind; each file is written atomically.
/// </summary>
internal static class DemoPipeline
{
    public const string FloatFile = "float.safetensors";
    public const string PrunedFile = "pruned.safetensors";
    public const string Int8File = "int8.safetensors";
    public const string PrunedInt8File = "pruned.int8.safetensors";
    public const string StatisticsFile = "stats.safetensors";
    public const string ResultsFile = "demo.json";

    /// <summary>The layer and output channel whose weights <see cref="DemoResults.WeightHistogram"/> holds.</summary>
    public const string HistogramLayer = "fc1";

    private static readonly int[] InputShape = [1, SeedNetwork.InputSize, SeedNetwork.InputSize];

    /// <summary>Runs the pipeline; returns the record (also written to demo.json) and every file written.</summary>
    public static (DemoResults Results, IReadOnlyList<string> Files) Run(DemoSettings settings, DemoProgress progress, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        string started = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        MnistDataset trainSet = MnistDataset.Load(settings.DataDirectory, MnistSplit.Train);
        MnistDataset testSet = MnistDataset.Load(settings.DataDirectory, MnistSplit.Test);
        if (settings.Quick)
        {
            trainSet = trainSet.Take(Math.Min(DemoSettings.QuickTrainingDigits, trainSet.Count));
        }
        if (testSet.Count == 0)
        {
            throw new InvalidDataException($"{settings.DataDirectory} holds no test digits.");
        }
        var options = new TrainingOptions { Epochs = settings.Epochs, Seed = settings.Seed };
        if (trainSet.Count < options.BatchSize)
        {
            throw new InvalidDataException($"{settings.DataDirectory} holds {trainSet.Count} training digits, fewer than one batch of {options.BatchSize}.");
        }
        float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
        var test = BatchIterator.Sequential(testSet, 250, mean, std);

        // 1. The float model, with the gradient statistics the seed's criterion (and Taylor's) reads.
        progress.Step($"[1/5] Training the seed network: {settings.Epochs} epoch(s) on {trainSet.Count} digits ({testSet.Count} test), " +
                      $"seed {settings.Seed}, {settings.Threads} thread(s), gradient statistics tracked.");
        var train = BatchIterator.Shuffled(trainSet, options.BatchSize, options.Seed, epoch: 0, mean, std, BatchIterator.DefaultMaxShift);
        Sequential network = SeedNetwork.Create(options.Seed);
        network.Threads = settings.Threads;
        var statistics = new GradientStatistics(network, InputShape);
        IReadOnlyList<EpochReport> epochs = new Trainer(network, options).Run(train, test,
            new ObserverList(statistics, progress.Training("training", options.Epochs, train.BatchCount)), cancel);
        float floatAccuracy = epochs[^1].TestAccuracy;

        // 2. The sweep: accuracy straight after pruning, every criterion and amount.
        progress.Step($"[2/5] Pruning sweep: {string.Join(", ", settings.SweepCriteria.Select(NeuronImportance.Name))} at " +
                      $"{string.Join(", ", settings.SweepAmounts.Select(a => a.ToString("P0", CultureInfo.InvariantCulture)))} of {string.Join(" and ", settings.PrunedLayers)}, no fine-tuning.");
        var sweep = Sweep(network, statistics, floatAccuracy, test, settings, progress, cancel);

        // 3. The pruned models: the seed's criterion and Taylor, each fine-tuned.
        progress.Step($"[3/5] Pruning {settings.PruneAmount.ToString("P0", CultureInfo.InvariantCulture)} of {string.Join(" and ", settings.PrunedLayers)} " +
                      $"(structured) by {string.Join(" and by ", settings.FineTunedCriteria.Select(NeuronImportance.Name))}, one epoch of fine-tuning each.");
        var fineTuneBatches = BatchIterator.Shuffled(trainSet, 64, settings.Seed, 0, mean, std, BatchIterator.DefaultMaxShift);
        var pruned = new Dictionary<PruningCriterion, PruningOutcome>();
        foreach (PruningCriterion criterion in settings.FineTunedCriteria)
        {
            var pruning = new PruningOptions
            {
                Criterion = criterion, Amount = settings.PruneAmount, Layers = [.. settings.PrunedLayers], Structured = true, FineTuneEpochs = 1, Seed = settings.Seed,
            };
            PruningOutcome outcome = PruningRun.Run(network, statistics, pruning, fineTuneBatches, test, InputShape,
                progress.Training($"fine-tuning ({NeuronImportance.Name(criterion)})", 1, fineTuneBatches.BatchCount), cancel);
            outcome.Network.Threads = settings.Threads;
            pruned[criterion] = outcome;
            ConsoleReport.Line($"  {NeuronImportance.Name(criterion)}: {ConsoleReport.Percent(outcome.AccuracyBefore)} -> {ConsoleReport.Percent(outcome.AccuracyAfterPrune)} after pruning -> " +
                               $"{ConsoleReport.Percent(outcome.AccuracyAfterFineTune)} after fine-tuning; parameters {outcome.ParametersBefore:N0} -> {outcome.ParametersAfter:N0}.");
            int at = sweep.FindIndex(p => p.Criterion == NeuronImportance.Name(criterion) && p.Amount == settings.PruneAmount);
            sweep[at] = sweep[at] with { AccuracyAfterFineTune = outcome.AccuracyAfterFineTune };
        }
        Sequential prunedNetwork = pruned[PruningCriterion.GradientStability].Network;

        // 4. int8, per-channel weights (engine quantize's defaults).
        progress.Step($"[4/5] Quantizing the float and the pruned model to int8 (per-channel weights, {settings.CalibrationSamples} calibration digits).");
        var calibration = BatchIterator.Sequential(trainSet, 100, mean, std);
        int calibrationSamples = Math.Min(settings.CalibrationSamples, trainSet.Count);
        QuantizedNetwork int8 = Quantizer.Quantize(network, calibration, calibrationSamples, mean, std, new QuantizationOptions());
        QuantizedNetwork prunedInt8 = Quantizer.Quantize(prunedNetwork, calibration, calibrationSamples, mean, std, new QuantizationOptions());
        cancel.ThrowIfCancellationRequested();

        // 5. Accuracy and speed of each model through the Predictor, as an application runs it.
        var models = new (string Name, string File, Predictor Model, Sequential Source)[]
        {
            ("float", FloatFile, Predictor.FromNetwork(network, InputShape, mean, std, new PredictorOptions { Threads = settings.Threads }), network),
            ("pruned", PrunedFile, Predictor.FromNetwork(prunedNetwork, InputShape, mean, std, new PredictorOptions { Threads = settings.Threads }), prunedNetwork),
            ("int8", Int8File, Predictor.FromNetwork(int8, new PredictorOptions { Threads = settings.Threads }), network),
            ("pruned int8", PrunedInt8File, Predictor.FromNetwork(prunedInt8, new PredictorOptions { Threads = settings.Threads }), prunedNetwork),
        };
        CallTiming.Durations durations = settings.Timing;
        progress.Step($"[5/5] Evaluating the four models on {testSet.Count} test digits and timing them through the Predictor " +
                      $"(batch 1 and batch 64, {durations.Seconds.ToString(CultureInfo.InvariantCulture)} s each after {durations.Warmup.ToString(CultureInfo.InvariantCulture)} s of warm-up).");
        DemoProgress.Counter measured = progress.Count("timing", models.Length);
        var figures = new List<(float Accuracy, double LatencyMs, double SamplesPerSecond)>();
        foreach (var m in models)
        {
            cancel.ThrowIfCancellationRequested();
            float accuracy = EvalCommand.Accuracy(m.Model, test);
            double latency = Time(m.Model, m.File, testSet, 1, settings, cancel).MedianMs;
            double throughput = Time(m.Model, m.File, testSet, 64, settings, cancel).SamplesPerSecond(64);
            figures.Add((accuracy, latency, throughput));
            measured.Done(FormattableString.Invariant($"{m.Name} {100 * accuracy:F2}%, batch 1 {latency:F3} ms, batch 64 {throughput:F0} samples/s"));
        }
        cancel.ThrowIfCancellationRequested();

        // Every file, at the end: an interrupted run leaves none.
        Directory.CreateDirectory(settings.OutDirectory);
        string Out(string name) => Path.Combine(settings.OutDirectory, name);
        var metadata = new Dictionary<string, string> { ["seed"] = settings.Seed.ToString(CultureInfo.InvariantCulture), ["test_accuracy"] = floatAccuracy.ToString("R", CultureInfo.InvariantCulture) };
        ModelFile.SaveFloat(network, Out(FloatFile), mean, std, InputShape, metadata);
        ModelFile.SaveFloat(prunedNetwork, Out(PrunedFile), mean, std, InputShape, new Dictionary<string, string>
        {
            ["pruned_by"] = NeuronImportance.Name(PruningCriterion.GradientStability),
            ["pruned_amount"] = settings.PruneAmount.ToString("R", CultureInfo.InvariantCulture),
            ["pruned_layers"] = string.Join(",", settings.PrunedLayers),
        });
        QuantizedModelFile.Save(int8, Out(Int8File));
        QuantizedModelFile.Save(prunedInt8, Out(PrunedInt8File));
        GradientStatisticsFile.Save(statistics, Out(StatisticsFile));

        string[] prunable = [.. PruningGroups.Find(network, InputShape).Select(g => g.Name)];
        var stages = models.Select((m, i) =>
        {
            IReadOnlyList<LayerSize> size = NetworkSize.Describe(m.Source, InputShape);
            return new DemoStage(m.Name, figures[i].Accuracy, size.Sum(l => l.Parameters), new FileInfo(Out(m.File)).Length,
                size.Sum(l => l.MultiplyAccumulates), figures[i].LatencyMs, figures[i].SamplesPerSecond, m.File);
        }).ToList();
        var results = new DemoResults
        {
            Started = started,
            Machine = MachineDescription(),
            Threads = settings.Threads,
            Training = epochs.Select(e => new DemoEpoch(e.Epoch, e.TrainLoss, e.TrainAccuracy, e.TestAccuracy, e.Seconds)).ToList(),
            Neurons = Neurons(network, statistics, settings),
            NeuronsKept = [.. pruned.SelectMany(p => p.Value.Before.Zip(p.Value.After)
                .Where(layer => prunable.Contains(layer.First.Name))
                .Select(layer => new DemoNeuronsKept(NeuronImportance.Name(p.Key), layer.First.Name, layer.First.Neurons, layer.Second.Neurons)))],
            PruningSweep = sweep,
            WeightHistogram = Histogram(network, int8),
            Stages = stages,
            Seconds = clock.Elapsed.TotalSeconds,
        };
        AtomicFile.Write(Out(ResultsFile), DemoJson.ToBytes(results));
        var files = new List<string> { Out(FloatFile), Out(PrunedFile), Out(Int8File), Out(PrunedInt8File), Out(StatisticsFile), Out(ResultsFile) };
        // Integration point: the report (HTML and Markdown with plots) is drawn from the record just written.
        files.AddRange(Report.DemoReport.Write(results, settings.OutDirectory));
        results.Seconds = clock.Elapsed.TotalSeconds;
        return (results, files);
    }

    /// <summary>
    /// Test accuracy straight after structured pruning for every criterion and amount; amount 0 is the float model. The
    /// plan of each point is the one <see cref="PruningRun"/> makes in its single step (the same ranking and seed), so the
    /// fine-tuned models start from the sweep's point at their amount.
    /// </summary>
    private static List<DemoSweepPoint> Sweep(Sequential network, GradientStatistics statistics, float floatAccuracy, IBatchSource test,
        DemoSettings settings, DemoProgress progress, CancellationToken cancel)
    {
        var points = new List<DemoSweepPoint>();
        DemoProgress.Counter done = progress.Count("sweep", settings.SweepCriteria.Count * settings.SweepAmounts.Count);
        foreach (PruningCriterion criterion in settings.SweepCriteria)
        {
            foreach (double amount in settings.SweepAmounts)
            {
                cancel.ThrowIfCancellationRequested();
                float accuracy = floatAccuracy;
                if (amount > 0)
                {
                    Sequential smaller = StructuredPruner.Apply(network, Plan(network, statistics, criterion, amount, settings), InputShape);
                    smaller.Threads = settings.Threads;
                    accuracy = Evaluation.Accuracy(smaller, test);
                }
                points.Add(new DemoSweepPoint(NeuronImportance.Name(criterion), amount, accuracy, double.NaN));
                done.Done(FormattableString.Invariant($"{NeuronImportance.Name(criterion)} {100 * amount:F0}%: {100 * accuracy:F2}%"));
            }
        }
        return points;
    }

    // PruningRun's single step: seed + 1 for its first (and only) step.
    private static PruningPlan Plan(Sequential network, GradientStatistics statistics, PruningCriterion criterion, double amount, DemoSettings settings) =>
        NeuronImportance.Rank(network, InputShape, criterion, amount, [.. settings.PrunedLayers], global: false, statistics, settings.Seed + 1);

    private static CallTiming.Timing Time(Predictor model, string name, MnistDataset testSet, int batch, DemoSettings settings, CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        return CallTiming.MeasurePredict(model, name, testSet, batch, settings.DataDirectory, settings.Timing, minimumCalls: 1);
    }

    /// <summary>Every prunable layer's gradient summaries, normalised seed score, and whether the seed criterion's model lost the neuron.</summary>
    private static List<DemoLayerNeurons> Neurons(Sequential network, GradientStatistics statistics, DemoSettings settings)
    {
        PruningPlan plan = Plan(network, statistics, PruningCriterion.GradientStability, settings.PruneAmount, settings);
        return PruningGroups.Find(network, InputShape).Select(group =>
        {
            NeuronGradientSummary summary = statistics.Summary(group.Name);
            double[] score = NeuronImportance.Scores(PruningCriterion.GradientStability, group, statistics, new SeededRandom(settings.Seed));
            var removed = new HashSet<int>(plan.RemovedFrom(group.Name));
            bool[] pruned = Enumerable.Range(0, group.Neurons).Select(removed.Contains).ToArray();
            return new DemoLayerNeurons(group.Name, summary.MeanAbsMean, summary.RmsStd, score, pruned);
        }).ToList();
    }

    /// <summary>Output channel 0 of <see cref="HistogramLayer"/>: its float weights and the int8 grid the quantized model rounds them to.</summary>
    private static DemoWeightHistogram Histogram(Sequential network, QuantizedNetwork int8)
    {
        QuantizedWeightedLayer layer = int8.Layers.OfType<QuantizedWeightedLayer>().First(l => l.Name == HistogramLayer);
        float[] weights = network[HistogramLayer].Parameters[0].Value.Data[..layer.Depth].ToArray();
        // Per-channel weights are symmetric over [-127, 127]; per-tensor ones use the whole int8 range (Quantizer.QuantizeWeights).
        (int codeMin, int codeMax) = layer.PerChannel ? (-sbyte.MaxValue, (int)sbyte.MaxValue) : (sbyte.MinValue, sbyte.MaxValue);
        return new DemoWeightHistogram(HistogramLayer, 0, weights, layer.WeightScale(0), layer.WeightZeroPoint(0), codeMin, codeMax);
    }

    /// <summary>The processor's name (from /proc/cpuinfo where there is one) and what <c>engine bench</c> says of the machine.</summary>
    private static string MachineDescription()
    {
        string? cpu = null;
        try
        {
            cpu = File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            // The name is a courtesy; the instruction sets below are what the figures depend on.
        }
        // Describe() reads "Machine: 2 logical processors; ...": the report puts its own "Machine:" label before this.
        string machine = CallTiming.Machine.Current().Describe()["Machine: ".Length..];
        return cpu is null ? machine : $"{cpu}, {machine}";
    }
}
