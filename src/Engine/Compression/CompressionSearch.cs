using System.Diagnostics;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Pruning;
using Engine.Quantization;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Compression;

/// <summary>What a compression search makes small: the model file, or the time of a batch.</summary>
public enum CompressionObjective
{
    /// <summary>Bytes of the int8 model file.</summary>
    Size,
    /// <summary>Measured time of one batch through the <see cref="Predictor"/>.</summary>
    Latency,
}

/// <summary>The budget, the search space and the recovery of <see cref="CompressionSearch.Run"/>.</summary>
public sealed record CompressionOptions
{
    /// <summary>The most test accuracy, in percentage points, the chosen model may lose against the float model.</summary>
    public double MaxAccuracyDrop { get; init; } = 0.5;

    /// <summary>What the search makes small.</summary>
    public CompressionObjective Objective { get; init; } = CompressionObjective.Size;

    /// <summary>How the neurons to remove are chosen at every pruning step.</summary>
    public PruningCriterion Criterion { get; init; } = PruningCriterion.Taylor;

    /// <summary>The pruning ladder: fractions of a layer's original neurons, increasing, starting at 0.</summary>
    public IReadOnlyList<double> Amounts { get; init; } = [0, 0.25, 0.5, 0.625, 0.75, 0.875, 0.9375];

    /// <summary>The bit-width ladder of the weight codes, decreasing, starting at 8.</summary>
    public IReadOnlyList<int> Bits { get; init; } = [8, 4];

    /// <summary>Epochs of fine-tuning after every pruning step.</summary>
    public int FineTuneEpochs { get; init; } = 3;

    /// <summary>Epochs of fine-tuning when a rejected step is tried again in the refinement.</summary>
    public int RefineEpochs { get; init; } = 8;

    /// <summary>
    /// Weight of the float model's soft targets in fine-tuning (knowledge distillation, <see cref="DistillationLoss"/>,
    /// temperature 4); 0: labels only.
    /// </summary>
    public float DistillationWeight { get; init; } = 0.5f;

    /// <summary>
    /// Epochs of quantization-aware training (<see cref="QuantizationAwareTraining"/>) for every candidate with weights
    /// below 8 bits, instead of post-training calibration; 0: calibration only.
    /// </summary>
    public int QatEpochs { get; init; }

    /// <summary>Peak learning rate of fine-tuning (cosine to zero).</summary>
    public float FineTuneLearningRate { get; init; } = 0.01f;

    /// <summary>Training images the activation ranges are calibrated on.</summary>
    public int CalibrationSamples { get; init; } = 1000;

    /// <summary>Samples per timed batch (the latency objective and the reported speed-up).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The most candidates evaluated (each costs a fine-tuning run at most).</summary>
    public int MaxCandidates { get; init; } = 40;

    /// <summary>Seed of fine-tuning's shuffling and of the random criterion.</summary>
    public ulong Seed { get; init; } = 1;
}

/// <summary>One layer's setting in a candidate: the fraction of its original neurons removed and its weight bits.</summary>
public readonly record struct LayerSetting(string Layer, double Amount, int Neurons, int Bits);

/// <summary>
/// One measured candidate: its settings, its int8 model's test accuracy, file size, batch time, parameters and
/// multiply-accumulates per sample; whether it met the budget; the move that made it from the accepted one before.
/// </summary>
public sealed record CompressionCandidate(int Index, string Move, IReadOnlyList<LayerSetting> Settings, float Accuracy, long Bytes,
    double BatchSeconds, long Parameters, long MultiplyAccumulates, bool WithinBudget)
{
    /// <summary>Accuracy lost against <paramref name="floatAccuracy"/>, in percentage points.</summary>
    public double AccuracyDrop(float floatAccuracy) => 100.0 * (floatAccuracy - Accuracy);
}

/// <summary>The outcome of <see cref="CompressionSearch.Run"/>; every time is of one batch, measured in the same process.</summary>
/// <param name="FloatAccuracy">The float model's test accuracy.</param>
/// <param name="FloatBytes">Bytes of the float model as the engine writes it (<see cref="ModelFile.ToBytes"/>).</param>
/// <param name="FloatBatchSeconds">The float model's batch time.</param>
/// <param name="Candidates">Every candidate measured, in order.</param>
/// <param name="ParetoFront">The candidates no other beats on both accuracy and the objective, best objective first.</param>
/// <param name="Chosen">The candidate within the budget with the best objective, or null when none is.</param>
/// <param name="ChosenNetwork">Its int8 network.</param>
/// <param name="ChosenFloatNetwork">The fine-tuned float network it was quantized from.</param>
/// <param name="Seconds">Wall time of the search.</param>
public sealed record CompressionResult(float FloatAccuracy, long FloatBytes, double FloatBatchSeconds, IReadOnlyList<CompressionCandidate> Candidates,
    IReadOnlyList<CompressionCandidate> ParetoFront, CompressionCandidate? Chosen, QuantizedNetwork? ChosenNetwork, Sequential? ChosenFloatNetwork, double Seconds);

/// <summary>
/// Searches per-layer pruning amounts and weight bit widths for the smallest (or fastest) int8 model that stays within an
/// accuracy budget (docs/compression.md):
/// <list type="number">
/// <item>Greedy: from the accepted model (at first the float model quantized at 8 bits), every layer can take one step
/// down its pruning ladder or its bit ladder. Each step is scored by what it saves (file bytes or multiply-accumulates,
/// computed from the shapes it would give) over what the sensitivity table says it costs (the accuracy lost when only
/// that layer is compressed so far, plus 0.1 point so that free steps still rank by saving). The best step is built for
/// real: pruning steps remove the neurons the criterion ranks lowest on statistics recorded during the last
/// fine-tuning, then fine-tune; the model is quantized with each layer's bits and measured (accuracy on the test
/// digits, file bytes, batch time). Within budget and measured better on the objective, it becomes the accepted model;
/// otherwise that step of that layer is closed.</item>
/// <item>Refine: each closed step is tried once more with longer fine-tuning; a success reopens the greedy search.</item>
/// </list>
/// The chosen model is the accepted candidate with the best objective; every candidate measured is reported, and the
/// Pareto front among them.
/// </summary>
public static class CompressionSearch
{
    /// <summary>
    /// Runs the search from <paramref name="network"/> (not modified). <paramref name="timeBatch"/> returns the seconds of
    /// one batch of <see cref="CompressionOptions.BatchSize"/> samples through a predictor (the caller decides how to time).
    /// </summary>
    public static CompressionResult Run(Sequential network, int[] inputShape, float inputMean, float inputStd, GradientStatistics? statistics,
        SensitivityReport sensitivity, IBatchSource train, IBatchSource calibration, IBatchSource test, CompressionOptions options,
        Func<Predictor, double> timeBatch, Action<string>? progress = null, CancellationToken cancel = default)
    {
        Check(options, statistics);
        var clock = Stopwatch.StartNew();
        var search = new Search(network, inputShape, inputMean, inputStd, statistics, sensitivity, train, calibration, test, options, timeBatch, progress, cancel);
        return search.Run(clock);
    }

    private static void Check(CompressionOptions options, GradientStatistics? statistics)
    {
        if (!(options.MaxAccuracyDrop >= 0) || double.IsInfinity(options.MaxAccuracyDrop))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxAccuracyDrop, "the accuracy budget is a finite number of points, 0 or more.");
        }
        if (options.Amounts.Count == 0 || options.Amounts[0] != 0 || options.Amounts.Zip(options.Amounts.Skip(1)).Any(p => !(p.Second > p.First)) || options.Amounts[^1] >= 1)
        {
            throw new ArgumentException("the pruning ladder starts at 0 and increases below 1.");
        }
        if (options.Bits.Count == 0 || options.Bits[0] != QuantizationOptions.MaxWeightBits || options.Bits.Zip(options.Bits.Skip(1)).Any(p => !(p.Second < p.First))
            || options.Bits[^1] < QuantizationOptions.MinWeightBits)
        {
            throw new ArgumentException($"the bit ladder starts at {QuantizationOptions.MaxWeightBits} and decreases to {QuantizationOptions.MinWeightBits} at least.");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(options.FineTuneEpochs);
        ArgumentOutOfRangeException.ThrowIfNegative(options.QatEpochs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.BatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxCandidates);
        if (statistics is null && NeuronImportance.NeedsStatistics(options.Criterion))
        {
            throw new ArgumentException($"the {NeuronImportance.Name(options.Criterion)} criterion needs gradient statistics.");
        }
    }

    /// <summary>One state of the search: a fine-tuned float network, its statistics, and each layer's ladder positions.</summary>
    private sealed record State(Sequential Network, GradientStatistics? Statistics, IReadOnlyDictionary<string, int> AmountStep,
        IReadOnlyDictionary<string, int> BitsStep, CompressionCandidate Candidate);

    /// <summary>A step of one layer down one ladder.</summary>
    private readonly record struct Move(string Layer, bool Pruning);

    private sealed class Search(Sequential original, int[] inputShape, float inputMean, float inputStd, GradientStatistics? statistics,
        SensitivityReport sensitivity, IBatchSource train, IBatchSource calibration, IBatchSource test, CompressionOptions options,
        Func<Predictor, double> timeBatch, Action<string>? progress, CancellationToken cancel)
    {
        private readonly List<CompressionCandidate> _candidates = [];
        private readonly string[] _weighted = original.Layers.Where(l => l.Layer is WeightedLayer).Select(l => l.Name).ToArray();
        private readonly Dictionary<string, int> _originalNeurons = PruningGroups.Find(original, inputShape).ToDictionary(g => g.Name, g => g.Neurons);
        private float _floatAccuracy;
        private readonly Dictionary<CompressionCandidate, (QuantizedNetwork Int8, Sequential Float)> _networks = [];
        // The float model as trained, teaching every fine-tuning (a copy: a network cannot teach itself).
        private readonly Sequential? _teacher = options.DistillationWeight > 0 ? StructuredPruner.Apply(original, new PruningPlan(), inputShape) : null;

        public CompressionResult Run(Stopwatch clock)
        {
            _floatAccuracy = Evaluation.Accuracy(original, test);
            long floatBytes = ModelFile.ToBytes(original, inputMean, inputStd, inputShape).Length;
            double floatSeconds = timeBatch(Predictor.FromNetwork(original, inputShape, inputMean, inputStd, new PredictorOptions { Threads = original.Threads }));
            progress?.Invoke($"float model: {100 * _floatAccuracy:F2}%, {floatBytes:N0} bytes, {1000 * floatSeconds:F2} ms per batch of {options.BatchSize}");

            Sequential start = StructuredPruner.Apply(original, new PruningPlan(), inputShape);
            var zeroSteps = _weighted.ToDictionary(n => n, _ => 0);
            State accepted = Measure("int8 (start)", start, statistics, zeroSteps, zeroSteps);
            var closed = new HashSet<Move>();
            var retried = new HashSet<Move>();
            while (_candidates.Count < options.MaxCandidates)
            {
                cancel.ThrowIfCancellationRequested();
                Move? next = BestMove(accepted, closed);
                bool refining = false;
                if (next is null)
                {
                    // Refine: a closed step may have failed for want of recovery; try each once with longer fine-tuning.
                    next = closed.Where(m => !retried.Contains(m)).Cast<Move?>().FirstOrDefault();
                    if (next is null)
                    {
                        break;
                    }
                    retried.Add(next.Value);
                    refining = true;
                }
                State candidate = Apply(accepted, next.Value, refining ? options.RefineEpochs : options.FineTuneEpochs, refining);
                // Kept only if it is within the budget and really better: the saving was predicted from shapes, and a
                // 4-bit layer of a few hundred weights can cost more in tensor headers than its packing saves.
                bool better = Objective(candidate.Candidate) < Objective(accepted.Candidate);
                if (candidate.Candidate.WithinBudget && better)
                {
                    accepted = candidate;
                    closed.Remove(next.Value);
                }
                else
                {
                    closed.Add(next.Value);
                }
                progress?.Invoke($"   -> {(candidate.Candidate.WithinBudget && better ? "kept" : candidate.Candidate.WithinBudget ? $"within budget but no better than #{accepted.Candidate.Index}: not kept" : "over budget: not kept")}");
            }

            var within = _candidates.Where(c => c.WithinBudget).ToList();
            CompressionCandidate? chosen = within.Count == 0 ? null : within.MinBy(Objective);
            var front = ParetoFront(_candidates);
            (QuantizedNetwork Int8, Sequential Float)? networks = chosen is null ? null : _networks[chosen];
            return new CompressionResult(_floatAccuracy, floatBytes, floatSeconds, _candidates, front, chosen, networks?.Int8, networks?.Float, clock.Elapsed.TotalSeconds);
        }

        private double Objective(CompressionCandidate c) => options.Objective == CompressionObjective.Size ? c.Bytes : c.BatchSeconds;

        private List<CompressionCandidate> ParetoFront(IEnumerable<CompressionCandidate> all)
        {
            var front = new List<CompressionCandidate>();
            foreach (var c in all.OrderBy(Objective).ThenByDescending(c => c.Accuracy))
            {
                if (front.Count == 0 || c.Accuracy > front[^1].Accuracy)
                {
                    front.Add(c);
                }
            }
            return front;
        }

        /// <summary>The open step with the best saving per point the sensitivity table says it costs; null when none saves anything.</summary>
        private Move? BestMove(State accepted, HashSet<Move> closed)
        {
            double current = PredictedObjective(accepted.Network, accepted.BitsStep);
            Move? best = null;
            double bestScore = 0;
            foreach (string layer in _weighted)
            {
                foreach (bool pruning in new[] { true, false })
                {
                    var move = new Move(layer, pruning);
                    if (closed.Contains(move) || !CanStep(accepted, move))
                    {
                        continue;
                    }
                    double saving;
                    double cost;
                    if (pruning)
                    {
                        double amount = options.Amounts[accepted.AmountStep[layer] + 1];
                        Sequential shape = Pruned(accepted.Network, layer, amount, null, shapeOnly: true);
                        saving = current - PredictedObjective(shape, accepted.BitsStep);
                        cost = sensitivity.PruningDrop(layer, amount) ?? 100;
                    }
                    else
                    {
                        var bits = new Dictionary<string, int>(accepted.BitsStep) { [layer] = accepted.BitsStep[layer] + 1 };
                        saving = current - PredictedObjective(accepted.Network, bits);
                        cost = sensitivity.QuantizationDrop(layer, options.Bits[bits[layer]]) ?? 100;
                    }
                    double score = saving / (Math.Max(cost, 0) + 0.1);
                    if (saving > 0 && score > bestScore)
                    {
                        (best, bestScore) = (move, score);
                    }
                }
            }
            return best;
        }

        private bool CanStep(State s, Move move) => move.Pruning
            ? _originalNeurons.ContainsKey(move.Layer) && s.AmountStep[move.Layer] + 1 < options.Amounts.Count
              && (int)Math.Round(options.Amounts[s.AmountStep[move.Layer] + 1] * _originalNeurons[move.Layer]) < _originalNeurons[move.Layer]
            : s.BitsStep[move.Layer] + 1 < options.Bits.Count;

        /// <summary>File bytes (weights at their bits, plus four bytes of bias and scale per output) or multiply-accumulates per sample.</summary>
        private double PredictedObjective(Sequential network, IReadOnlyDictionary<string, int> bitsStep)
        {
            IReadOnlyList<LayerSize> sizes = NetworkSize.Describe(network, inputShape);
            if (options.Objective == CompressionObjective.Latency)
            {
                return sizes.Sum(s => (double)s.MultiplyAccumulates);
            }
            double bytes = 0;
            foreach ((string name, Layer layer) in network.Layers)
            {
                if (layer is WeightedLayer w)
                {
                    bytes += Math.Ceiling(w.Weight.Value.Length * options.Bits[bitsStep[name]] / 8.0) + 8.0 * w.Neurons;
                }
            }
            return bytes;
        }

        private State Apply(State accepted, Move move, int epochs, bool refining)
        {
            var amountStep = new Dictionary<string, int>(accepted.AmountStep);
            var bitsStep = new Dictionary<string, int>(accepted.BitsStep);
            Sequential network = accepted.Network;
            GradientStatistics? stats = accepted.Statistics;
            if (move.Pruning)
            {
                amountStep[move.Layer]++;
                network = Pruned(accepted.Network, move.Layer, options.Amounts[amountStep[move.Layer]], accepted.Statistics, shapeOnly: false);
                stats = FineTune(network, epochs);
            }
            else
            {
                bitsStep[move.Layer]++;
            }
            string label = (refining ? "refine: " : "") + (move.Pruning
                ? FormattableString.Invariant($"{move.Layer} pruned {100 * options.Amounts[amountStep[move.Layer]]:0.##}%")
                : $"{move.Layer} at {options.Bits[bitsStep[move.Layer]]} bits");
            return Measure(label, network, stats, amountStep, bitsStep);
        }

        /// <summary>
        /// <paramref name="network"/> with <paramref name="layer"/> cut down to round((1 - amount) N0) neurons: the lowest
        /// ranked by the criterion (with <paramref name="shapeOnly"/>, the first ones: only the shapes are wanted).
        /// </summary>
        private Sequential Pruned(Sequential network, string layer, double amount, GradientStatistics? stats, bool shapeOnly)
        {
            int originalNeurons = _originalNeurons[layer];
            int live = PruningGroups.Find(network, inputShape).Single(g => g.Name == layer).Neurons;
            int remove = live - (originalNeurons - (int)Math.Round(amount * originalNeurons));
            PruningPlan plan;
            if (shapeOnly)
            {
                plan = new PruningPlan();
                plan.Remove(layer, Enumerable.Range(0, Math.Max(remove, 0)));
            }
            else
            {
                // Rank's amount is a fraction of the live neurons of this network.
                plan = NeuronImportance.Rank(network, inputShape, options.Criterion, (double)Math.Max(remove, 0) / live, [layer],
                    statistics: stats, seed: options.Seed + (ulong)_candidates.Count);
            }
            return StructuredPruner.Apply(network, plan, inputShape);
        }

        /// <summary>Fine-tunes in place, recording fresh gradient statistics for the next pruning step's criterion.</summary>
        private GradientStatistics? FineTune(Sequential network, int epochs)
        {
            GradientStatistics? stats = NeuronImportance.NeedsStatistics(options.Criterion) ? new GradientStatistics(network, inputShape) : null;
            if (epochs == 0)
            {
                return stats is null ? null : throw new InvalidOperationException("a statistics-based criterion needs fine-tuning between pruning steps.");
            }
            new Trainer(network, FineTuning(epochs)).Run(train, null, stats, cancel);
            return stats;
        }

        private TrainingOptions FineTuning(int epochs) => new()
        {
            Epochs = epochs,
            LearningRate = options.FineTuneLearningRate,
            WarmupEpochs = 0,
            Seed = options.Seed + (ulong)_candidates.Count,
            Teacher = _teacher,
            DistillationWeight = options.DistillationWeight,
        };

        private State Measure(string move, Sequential network, GradientStatistics? stats, Dictionary<string, int> amountStep, Dictionary<string, int> bitsStep)
        {
            var layerBits = bitsStep.ToDictionary(p => p.Key, p => options.Bits[p.Value]);
            var quantization = new QuantizationOptions { LayerWeightBits = layerBits };
            QuantizedNetwork int8;
            if (options.QatEpochs > 0 && layerBits.Values.Any(b => b < QuantizationOptions.MaxWeightBits))
            {
                // On a copy: the candidate's float network stays what fine-tuning made it, the start of the next step.
                var qat = new QuantizationAwareTraining(StructuredPruner.Apply(network, new PruningPlan(), inputShape), quantization);
                qat.Train(train, FineTuning(options.QatEpochs), cancel: cancel);
                int8 = qat.ToQuantizedNetwork(inputShape, inputMean, inputStd);
            }
            else
            {
                int8 = Quantizer.Quantize(network, calibration, Math.Min(options.CalibrationSamples, calibration.Count), inputMean, inputStd, quantization);
            }
            float accuracy = int8.Evaluate(test, 250, network.Threads).Accuracy;
            long bytes = QuantizedModelFile.ToBytes(int8).Length;
            double seconds = timeBatch(Predictor.FromNetwork(int8, new PredictorOptions { Threads = network.Threads }));
            var groups = PruningGroups.Find(network, inputShape).ToDictionary(g => g.Name, g => g.Neurons);
            IReadOnlyList<LayerSize> sizes = NetworkSize.Describe(network, inputShape);
            var settings = _weighted.Select(name => new LayerSetting(name,
                _originalNeurons.ContainsKey(name) ? options.Amounts[amountStep[name]] : 0,
                groups.TryGetValue(name, out int n) ? n : ((WeightedLayer)network.Layers.Single(l => l.Name == name).Layer).Neurons,
                layerBits[name])).ToList();
            bool within = 100.0 * (_floatAccuracy - accuracy) <= options.MaxAccuracyDrop + 1e-9;
            var candidate = new CompressionCandidate(_candidates.Count, move, settings, accuracy, bytes, seconds,
                sizes.Sum(s => s.Parameters), sizes.Sum(s => s.MultiplyAccumulates), within);
            _candidates.Add(candidate);
            if (within)
            {
                _networks[candidate] = (int8, network);
            }
            progress?.Invoke($"#{candidate.Index} {move}: {100 * accuracy:F2}% ({candidate.AccuracyDrop(_floatAccuracy):+0.00;-0.00} points), {bytes:N0} bytes, " +
                             $"{1000 * seconds:F2} ms per batch");
            return new State(network, stats, amountStep, bitsStep, candidate);
        }
    }
}
