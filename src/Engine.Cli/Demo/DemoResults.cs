namespace Engine.Cli.Demo;

/// <summary>
/// Everything <c>engine demo</c> measured, in one record: the pipeline fills it, the report draws it, and
/// <c>demo.json</c> under <c>--out</c> holds it. Plain data only (arrays and records), so the report can be made again
/// from the JSON without training anything.
/// </summary>
internal sealed record DemoResults
{
    /// <summary>When the run started (UTC, ISO 8601) and the machine it ran on (CPU, instruction sets, cores, runtime).</summary>
    public required string Started { get; init; }

    public required string Machine { get; init; }

    /// <summary>Threads every stage used.</summary>
    public required int Threads { get; init; }

    /// <summary>Wall-clock seconds of the whole run.</summary>
    public double Seconds { get; set; }

    /// <summary>Training of the float model, one entry per epoch.</summary>
    public required IReadOnlyList<DemoEpoch> Training { get; init; }

    /// <summary>Per-neuron gradient statistics of every prunable layer, with the seed criterion's decision.</summary>
    public required IReadOnlyList<DemoLayerNeurons> Neurons { get; init; }

    /// <summary>Neurons per prunable layer before and after each pruned model the demo kept.</summary>
    public required IReadOnlyList<DemoNeuronsKept> NeuronsKept { get; init; }

    /// <summary>Test accuracy against the fraction pruned, one curve per criterion.</summary>
    public required IReadOnlyList<DemoSweepPoint> PruningSweep { get; init; }

    /// <summary>One output channel's float weights with the int8 grid they are rounded to.</summary>
    public required DemoWeightHistogram WeightHistogram { get; init; }

    /// <summary>The four models (float, pruned float, int8, pruned int8), in that order, and any extra ones after them.</summary>
    public required IReadOnlyList<DemoStage> Stages { get; init; }
}

/// <summary>One training epoch: mean loss over its batches, accuracies in [0, 1], wall-clock seconds.</summary>
internal sealed record DemoEpoch(int Epoch, double TrainLoss, double TrainAccuracy, double TestAccuracy, double Seconds);

/// <summary>
/// One prunable layer's neurons: the per-neuron gradient summaries the seed criterion reads (mean of |Welford mean| and
/// root mean square of the Welford standard deviation over the neuron's weights), its normalised score, and whether the
/// demo's pruning removed the neuron.
/// </summary>
internal sealed record DemoLayerNeurons(string Layer, double[] GradientMean, double[] GradientStd, double[] Score, bool[] Pruned);

/// <summary>Neurons of one layer before pruning and after, in the model pruned by <paramref name="Criterion"/>.</summary>
internal sealed record DemoNeuronsKept(string Criterion, string Layer, int Before, int After);

/// <summary>
/// One point of the pruning sweep: the test accuracy right after removing <paramref name="Amount"/> (0..1) of every
/// prunable layer's neurons by <paramref name="Criterion"/>, and after fine-tuning (NaN where not fine-tuned).
/// </summary>
internal sealed record DemoSweepPoint(string Criterion, double Amount, double AccuracyAfterPrune, double AccuracyAfterFineTune);

/// <summary>
/// The float weights of output channel <paramref name="Channel"/> of <paramref name="Layer"/> and the int8 grid of that
/// channel: code q stands for <paramref name="Scale"/> x (q - <paramref name="ZeroPoint"/>), q in
/// [<paramref name="CodeMin"/>, <paramref name="CodeMax"/>].
/// </summary>
internal sealed record DemoWeightHistogram(string Layer, int Channel, float[] Weights, float Scale, int ZeroPoint, int CodeMin, int CodeMax);

/// <summary>
/// One model of the final table: test accuracy in [0, 1], parameters, file bytes, multiply-accumulates per sample,
/// batch-1 median latency in milliseconds and batch-64 throughput in samples per second, and the file written.
/// </summary>
internal sealed record DemoStage(
    string Name, double Accuracy, long Parameters, long Bytes, long MultiplyAccumulates, double LatencyMs, double SamplesPerSecond, string File);
