using Engine.Data;
using Engine.Layers;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Pruning;

/// <summary>What to prune and how to recover.</summary>
public sealed record PruningOptions
{
    /// <summary>How neurons are scored.</summary>
    public PruningCriterion Criterion { get; init; } = PruningCriterion.GradientStability;

    /// <summary>Fraction of the neurons of <see cref="Layers"/> to remove, 0..1.</summary>
    public double Amount { get; init; } = 0.5;

    /// <summary>The layers to prune (null: every prunable layer).</summary>
    public IReadOnlyCollection<string>? Layers { get; init; }

    /// <summary>Rank neurons of all selected layers together (normalised scores) instead of layer by layer.</summary>
    public bool Global { get; init; }

    /// <summary>Remove neurons physically (else zero them with masks).</summary>
    public bool Structured { get; init; } = true;

    /// <summary>Epochs of fine-tuning after each pruning step.</summary>
    public int FineTuneEpochs { get; init; } = 1;

    /// <summary>
    /// Pruning steps: each removes Amount / Iterations of the original neurons and is followed by fine-tuning. With masks,
    /// neurons masked by one step stay masked in the next, so exactly round(Amount x neurons) are masked at the end.
    /// </summary>
    public int Iterations { get; init; } = 1;

    /// <summary>Peak learning rate of fine-tuning (cosine to zero, no warm-up).</summary>
    public float FineTuneLearningRate { get; init; } = 0.01f;

    /// <summary>Threshold mode of the gradient-stability criterion (both thresholds set): normalised mean and spread limits.</summary>
    public (double Mean, double Std)? Thresholds { get; init; }

    /// <summary>Seed for the random criterion and for fine-tuning.</summary>
    public ulong Seed { get; init; } = 1;
}

/// <summary>The outcome of <see cref="PruningRun.Run"/>.</summary>
public sealed record PruningOutcome(
    Sequential Network, float AccuracyBefore, float AccuracyAfterPrune, float AccuracyAfterFineTune,
    IReadOnlyList<LayerSize> Before, IReadOnlyList<LayerSize> After, GradientStatistics? Statistics)
{
    /// <summary>Parameters before pruning.</summary>
    public long ParametersBefore => Before.Sum(l => l.Parameters);

    /// <summary>Parameters after pruning (masked neurons still count: they are still stored).</summary>
    public long ParametersAfter => After.Sum(l => l.Parameters);
}

/// <summary>
/// Prune, measure, fine-tune, measure: the whole procedure on a copy of a network. With several iterations each step
/// removes its share of the original neurons and is followed by fine-tuning, during which fresh gradient statistics are
/// collected for the next step's criterion.
/// </summary>
public static class PruningRun
{
    /// <summary>Runs the procedure; <paramref name="original"/> is not modified.</summary>
    public static PruningOutcome Run(Sequential original, GradientStatistics? statistics, PruningOptions options,
        IBatchSource train, IBatchSource test, int[] inputShape, ITrainingObserver? progress = null, CancellationToken cancel = default)
    {
        if (options.Iterations < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Iterations, "iterations must be at least 1.");
        }
        if (options.Iterations > 1 && options.FineTuneEpochs < 1 && NeuronImportance.NeedsStatistics(options.Criterion))
        {
            throw new ArgumentException($"iterative {NeuronImportance.Name(options.Criterion)} pruning needs fine-tuning between steps to collect fresh statistics.");
        }
        Sequential network = StructuredPruner.Apply(original, new PruningPlan(), inputShape);  // an exact copy
        IReadOnlyList<LayerSize> before = NetworkSize.Describe(network, inputShape);
        float accuracyBefore = Evaluation.Accuracy(network, test);
        float afterPrune = accuracyBefore, afterFineTune = accuracyBefore;
        MaskPruner? mask = null;
        PruningPlan? masked = null;
        for (int step = 1; step <= options.Iterations; step++)
        {
            // Structured: remove this step's share of what is left. Masks: the cumulative fraction, where the neurons
            // masked so far stay masked and count toward it (the next ones are chosen among the live neurons only).
            double done = options.Amount * (step - 1) / options.Iterations, target = options.Amount * step / options.Iterations;
            double fraction = options.Structured ? (target - done) / (1 - done) : target;
            PruningPlan plan = options.Thresholds is { } t && options.Criterion == PruningCriterion.GradientStability
                ? NeuronImportance.Threshold(network, inputShape, Require(statistics), t.Mean, t.Std, options.Layers, masked)
                : NeuronImportance.Rank(network, inputShape, options.Criterion, fraction, options.Layers, options.Global, statistics,
                    options.Seed + (ulong)step, masked);
            if (options.Structured)
            {
                network = StructuredPruner.Apply(network, plan, inputShape);
            }
            else
            {
                mask = MaskPruner.Apply(network, plan, inputShape);
                masked = plan;
            }
            afterPrune = Evaluation.Accuracy(network, test);
            afterFineTune = afterPrune;
            if (options.FineTuneEpochs > 0)
            {
                statistics = NeuronImportance.NeedsStatistics(options.Criterion) ? new GradientStatistics(network, inputShape) : null;
                var fineTune = new TrainingOptions
                {
                    Epochs = options.FineTuneEpochs,
                    LearningRate = options.FineTuneLearningRate,
                    WarmupEpochs = 0,
                    Seed = options.Seed + (ulong)step,
                    LabelSmoothing = TrainingOptions.DefaultLabelSmoothing,
                };
                IReadOnlyList<EpochReport> reports = new Trainer(network, fineTune).Run(train, test, new ObserverList(mask, statistics, progress), cancel);
                afterFineTune = reports[^1].TestAccuracy;
            }
        }
        return new PruningOutcome(network, accuracyBefore, afterPrune, afterFineTune, before, NetworkSize.Describe(network, inputShape), statistics);
    }

    private static GradientStatistics Require(GradientStatistics? statistics) =>
        statistics ?? throw new ArgumentException("threshold pruning needs gradient statistics (record them while training).");
}
