using Engine.Layers;
using Engine.Statistics;

namespace Engine.Pruning;

/// <summary>How to score a neuron's importance; the lowest-scoring neurons are pruned.</summary>
public enum PruningCriterion
{
    /// <summary>
    /// The seed's criterion: a neuron whose gradients sit stably near zero (small |E[g]| and small standard deviation)
    /// matters little. Score = sqrt(MeanAbsMean^2 + RmsStd^2), a root-mean-square gradient size (E[g^2] = mean^2 + variance);
    /// the mean alone cannot tell neurons apart once training settles, since every mean gradient is then near zero.
    /// </summary>
    GradientStability,
    /// <summary>Sum of |w| over the neuron's incoming weights (Li et al., 2017, "Pruning filters for efficient ConvNets").</summary>
    L1,
    /// <summary>Euclidean norm of the neuron's incoming weights.</summary>
    L2,
    /// <summary>E|sum of g w| over the neuron's incoming weights and bias, tracked during training (Molchanov et al., 2019).</summary>
    Taylor,
    /// <summary>Uniform random scores: the baseline any criterion must beat.</summary>
    Random,
}

/// <summary>Scores neurons and turns scores into a <see cref="PruningPlan"/>.</summary>
public static class NeuronImportance
{
    /// <summary>The names the command line uses: gradient-stability, l1, l2, taylor, random.</summary>
    public static PruningCriterion Parse(string text) => text switch
    {
        "gradient-stability" => PruningCriterion.GradientStability,
        "l1" => PruningCriterion.L1,
        "l2" => PruningCriterion.L2,
        "taylor" => PruningCriterion.Taylor,
        "random" => PruningCriterion.Random,
        _ => throw new ArgumentException($"unknown pruning criterion '{text}' (expected gradient-stability, l1, l2, taylor or random)."),
    };

    /// <summary>The command-line name of <paramref name="criterion"/>.</summary>
    public static string Name(PruningCriterion criterion) => criterion switch
    {
        PruningCriterion.GradientStability => "gradient-stability",
        PruningCriterion.L1 => "l1",
        PruningCriterion.L2 => "l2",
        PruningCriterion.Taylor => "taylor",
        _ => "random",
    };

    /// <summary>Whether <paramref name="criterion"/> needs gradient statistics.</summary>
    public static bool NeedsStatistics(PruningCriterion criterion) =>
        criterion is PruningCriterion.GradientStability or PruningCriterion.Taylor;

    /// <summary>
    /// Raw importance of each neuron of <paramref name="group"/> (higher matters more), divided by the layer's mean score
    /// so that layers of different sizes and gradient scales can be ranked together (a layer's mean normalised score is 1).
    /// </summary>
    public static double[] Scores(PruningCriterion criterion, PruningGroup group, GradientStatistics? statistics, SeededRandom random) =>
        Normalise(RawScores(criterion, group, statistics, random));

    private static double[] RawScores(PruningCriterion criterion, PruningGroup group, GradientStatistics? statistics, SeededRandom random) =>
        criterion switch
        {
            PruningCriterion.L1 => WeightNorms(group, squared: false),
            PruningCriterion.L2 => WeightNorms(group, squared: true),
            PruningCriterion.Random => Enumerable.Range(0, group.Neurons).Select(_ => random.NextDouble()).ToArray(),
            PruningCriterion.GradientStability => Summary(statistics, group, criterion) is var s
                ? s.MeanAbsMean.Zip(s.RmsStd, (m, d) => Math.Sqrt(m * m + d * d)).ToArray()
                : [],
            PruningCriterion.Taylor => Summary(statistics, group, criterion).Taylor,
            _ => throw new ArgumentOutOfRangeException(nameof(criterion)),
        };

    /// <summary>
    /// Ranks neurons by <paramref name="criterion"/> and removes a fraction <paramref name="amount"/> of the neurons of
    /// <paramref name="layers"/> (all prunable layers when null): the lowest-scoring ones in each layer, or with
    /// <paramref name="global"/> the lowest normalised scores across those layers together (at least one neuron always stays).
    /// <para>
    /// Neurons in <paramref name="alreadyPruned"/> (the mask of an earlier step) stay pruned and count toward the
    /// amount: each layer ends with round(amount x neurons) pruned neurons (the same total with <paramref name="global"/>),
    /// or with the earlier ones alone when they are already more. The rest are chosen among the live neurons only, with
    /// scores normalised over the live neurons, so the plan does not depend on what the criterion says about masked
    /// neurons (random scores, or statistics recorded before or after a mask zeroed their gradients).
    /// </para>
    /// </summary>
    public static PruningPlan Rank(Sequential network, int[] inputShape, PruningCriterion criterion, double amount,
        IReadOnlyCollection<string>? layers = null, bool global = false, GradientStatistics? statistics = null, ulong seed = 0,
        PruningPlan? alreadyPruned = null)
    {
        if (!(amount >= 0 && amount <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(amount), amount, "the amount to prune must be between 0 and 1.");
        }
        IReadOnlyList<PruningGroup> groups = Select(network, inputShape, layers);
        PruningPlan plan = Carry(network, inputShape, alreadyPruned);
        var random = new SeededRandom(seed);
        var scored = new List<(PruningGroup Group, int[] Live, double[] Scores)>();
        foreach (PruningGroup g in groups)
        {
            // Scores are drawn for every neuron (the random stream does not depend on the mask), then only the live
            // ones are normalised and ranked.
            double[] raw = RawScores(criterion, g, statistics, random);
            int[] pruned = plan.RemovedFrom(g.Name);
            int[] live = Enumerable.Range(0, g.Neurons).Except(pruned).ToArray();
            scored.Add((g, live, Normalise(live.Select(n => raw[n]).ToArray())));
        }
        if (!global)
        {
            foreach ((PruningGroup g, int[] live, double[] scores) in scored)
            {
                int count = (int)Math.Round(amount * g.Neurons) - (g.Neurons - live.Length);
                plan.Remove(g.Name, Lowest(scores, Math.Max(count, 0)).Select(i => live[i]));
            }
            plan.Validate(PruningGroups.Find(network, inputShape));
            return plan;
        }
        var removed = scored.ToDictionary(s => s.Group.Name, s => s.Group.Neurons - s.Live.Length);
        int total = (int)Math.Round(amount * groups.Sum(g => g.Neurons)) - removed.Values.Sum();
        foreach (var (layer, neuron, _) in scored
                     .SelectMany(s => s.Scores.Select((score, i) => (Layer: s.Group, Neuron: s.Live[i], Score: score)))
                     .OrderBy(x => x.Score).ThenBy(x => x.Layer.Name, StringComparer.Ordinal).ThenBy(x => x.Neuron))
        {
            if (total <= 0)
            {
                break;
            }
            if (removed[layer.Name] < layer.Neurons - 1)
            {
                plan.Remove(layer.Name, [neuron]);
                removed[layer.Name]++;
                total--;
            }
        }
        return plan;
    }

    /// <summary>
    /// The seed's criterion in threshold mode: removes every neuron whose normalised mean gradient size (MeanAbsMean over
    /// the layer's average) is below <paramref name="meanThreshold"/> and whose normalised spread (RmsStd over the layer's
    /// average) is below <paramref name="stdThreshold"/>. Dead neurons (gradients exactly zero) always qualify. At least
    /// one neuron per layer stays. Neurons in <paramref name="alreadyPruned"/> stay pruned; the thresholds are applied to
    /// the live neurons, normalised over the live neurons (as <see cref="Rank"/> does).
    /// </summary>
    public static PruningPlan Threshold(Sequential network, int[] inputShape, GradientStatistics statistics,
        double meanThreshold, double stdThreshold, IReadOnlyCollection<string>? layers = null, PruningPlan? alreadyPruned = null)
    {
        PruningPlan plan = Carry(network, inputShape, alreadyPruned);
        foreach (PruningGroup g in Select(network, inputShape, layers))
        {
            NeuronGradientSummary s = Summary(statistics, g, PruningCriterion.GradientStability);
            int[] live = Enumerable.Range(0, g.Neurons).Except(plan.RemovedFrom(g.Name)).ToArray();
            double[] mean = Normalise(live.Select(n => s.MeanAbsMean[n]).ToArray()), std = Normalise(live.Select(n => s.RmsStd[n]).ToArray());
            int[] candidates = Enumerable.Range(0, live.Length).Where(i => mean[i] < meanThreshold && std[i] < stdThreshold).ToArray();
            if (candidates.Length >= live.Length)
            {
                // Keep the neuron with the largest gradients rather than disconnect the network.
                int keep = Enumerable.Range(0, live.Length).MaxBy(i => mean[i] * mean[i] + std[i] * std[i]);
                candidates = candidates.Where(i => i != keep).ToArray();
            }
            plan.Remove(g.Name, candidates.Select(i => live[i]));
        }
        return plan;
    }

    // A new plan holding the neurons of an earlier plan (checked against the network), which stay pruned.
    private static PruningPlan Carry(Sequential network, int[] inputShape, PruningPlan? alreadyPruned)
    {
        var plan = new PruningPlan();
        if (alreadyPruned is not null)
        {
            alreadyPruned.Validate(PruningGroups.Find(network, inputShape));
            foreach ((string layer, int[] neurons) in alreadyPruned.Removed)
            {
                plan.Remove(layer, neurons);
            }
        }
        return plan;
    }

    private static IReadOnlyList<PruningGroup> Select(Sequential network, int[] inputShape, IReadOnlyCollection<string>? layers)
    {
        IReadOnlyList<PruningGroup> groups = PruningGroups.Find(network, inputShape);
        if (layers is null || layers.Count == 0)
        {
            return groups;
        }
        foreach (string layer in layers)
        {
            if (groups.All(g => g.Name != layer))
            {
                throw new ArgumentException($"layer '{layer}' cannot be pruned (prunable: {string.Join(", ", groups.Select(g => g.Name))}).");
            }
        }
        return groups.Where(g => layers.Contains(g.Name)).ToList();
    }

    private static NeuronGradientSummary Summary(GradientStatistics? statistics, PruningGroup group, PruningCriterion criterion)
    {
        if (statistics is null)
        {
            throw new ArgumentException($"the {Name(criterion)} criterion needs gradient statistics recorded while training (GradientStatistics).");
        }
        return statistics.Summary(group.Name);
    }

    private static double[] WeightNorms(PruningGroup group, bool squared)
    {
        ReadOnlySpan<float> w = group.Layer.Weight.Value.Data;
        int row = group.ParametersPerNeuron - 1;
        var norms = new double[group.Neurons];
        for (int n = 0; n < norms.Length; n++)
        {
            double sum = 0;
            foreach (float v in w.Slice(n * row, row))
            {
                sum += squared ? (double)v * v : Math.Abs(v);
            }
            norms[n] = squared ? Math.Sqrt(sum) : sum;
        }
        return norms;
    }

    private static double[] Normalise(double[] scores)
    {
        double mean = scores.Length == 0 ? 0 : scores.Average();
        return mean > 0 ? scores.Select(s => s / mean).ToArray() : scores;
    }

    private static int[] Lowest(double[] scores, int count) =>
        Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ThenBy(i => i).Take(count).ToArray();
}
