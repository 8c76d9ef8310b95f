using Engine.Data;
using Engine.Layers;
using Engine.Pruning;
using Engine.Quantization;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Compression;

/// <summary>What <see cref="SensitivityAnalysis.Run"/> tries on each layer.</summary>
public sealed record SensitivityOptions
{
    /// <summary>Fractions of a layer's neurons removed, one at a time (structured, without fine-tuning).</summary>
    public IReadOnlyList<double> Amounts { get; init; } = [0.25, 0.5, 0.75];

    /// <summary>Bit widths of a layer's weight codes, one at a time (the other layers stay float).</summary>
    public IReadOnlyList<int> Bits { get; init; } = [8, 6, 4];

    /// <summary>How the neurons to remove are chosen.</summary>
    public PruningCriterion Criterion { get; init; } = PruningCriterion.GradientStability;

    /// <summary>Per-channel symmetric weight codes (else per-tensor asymmetric).</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>Seed of the random criterion.</summary>
    public ulong Seed { get; init; } = 1;
}

/// <summary>Accuracy with one layer pruned by <paramref name="Amount"/>, keeping <paramref name="NeuronsKept"/> neurons.</summary>
public readonly record struct PruningSensitivity(double Amount, int NeuronsKept, float Accuracy);

/// <summary>Accuracy with one layer's weights quantized to <paramref name="Bits"/> bits.</summary>
public readonly record struct QuantizationSensitivity(int Bits, float Accuracy);

/// <summary>How much one layer matters: accuracy with only this layer pruned, and with only this layer quantized.</summary>
/// <param name="Layer">The layer's name.</param>
/// <param name="Neurons">Its output channels or units.</param>
/// <param name="Parameters">Its weights and biases.</param>
/// <param name="Pruned">One entry per amount (empty for the last layer, whose outputs are never pruned).</param>
/// <param name="Quantized">One entry per bit width.</param>
public sealed record LayerSensitivity(string Layer, int Neurons, long Parameters,
    IReadOnlyList<PruningSensitivity> Pruned, IReadOnlyList<QuantizationSensitivity> Quantized);

/// <summary>The outcome of <see cref="SensitivityAnalysis.Run"/>: the untouched network's accuracy and each layer's.</summary>
public sealed record SensitivityReport(float BaselineAccuracy, IReadOnlyList<LayerSensitivity> Layers)
{
    /// <summary>
    /// Accuracy lost, in percentage points, when only <paramref name="layer"/> is pruned by <paramref name="amount"/>:
    /// linear between the measured amounts (0 at amount 0), the last measured drop beyond them; null when not measured.
    /// </summary>
    public double? PruningDrop(string layer, double amount)
    {
        if (amount <= 0)
        {
            return 0;
        }
        var points = Layers.FirstOrDefault(l => l.Layer == layer)?.Pruned;
        if (points is null || points.Count == 0)
        {
            return null;
        }
        (double a0, double d0) = (0, 0);
        foreach (PruningSensitivity p in points.OrderBy(p => p.Amount))
        {
            double d = 100.0 * (BaselineAccuracy - p.Accuracy);
            if (amount <= p.Amount)
            {
                return d0 + (d - d0) * (amount - a0) / (p.Amount - a0);
            }
            (a0, d0) = (p.Amount, d);
        }
        return d0;
    }

    /// <summary>Accuracy lost, in points, when only <paramref name="layer"/>'s weights have <paramref name="bits"/> bits (null: not measured).</summary>
    public double? QuantizationDrop(string layer, int bits) =>
        Layers.FirstOrDefault(l => l.Layer == layer)?.Quantized.Where(q => q.Bits == bits).Select(q => (double?)(100.0 * (BaselineAccuracy - q.Accuracy))).FirstOrDefault();
}

/// <summary>
/// Per-layer sensitivity: how much accuracy the network loses when only one layer is compressed, the rest left as
/// trained. Pruning removes the layer's lowest-ranked neurons and their edges (<see cref="StructuredPruner"/>) without
/// fine-tuning, so it measures what the layer's neurons carry, not what training could recover. Quantization replaces
/// only the layer's weights by their quantized values (<see cref="Quantizer.FakeQuantizeWeights"/>), activations float,
/// so the drop is that of the weight grid alone. A layer that loses little is where a compression search should look
/// first (docs/compression.md).
/// </summary>
public static class SensitivityAnalysis
{
    /// <summary>Runs every setting on a copy of <paramref name="network"/> (which is not modified) and measures accuracy on <paramref name="test"/>.</summary>
    public static SensitivityReport Run(Sequential network, int[] inputShape, GradientStatistics? statistics, IBatchSource test,
        SensitivityOptions? options = null, Action<string>? progress = null, CancellationToken cancel = default)
    {
        options ??= new SensitivityOptions();
        foreach (double amount in options.Amounts)
        {
            if (!(amount > 0 && amount < 1))
            {
                throw new ArgumentOutOfRangeException(nameof(options), amount, "pruning amounts lie between 0 and 1, both excluded.");
            }
        }
        foreach (int bits in options.Bits)
        {
            if (bits < QuantizationOptions.MinWeightBits || bits > QuantizationOptions.MaxWeightBits)
            {
                throw new ArgumentOutOfRangeException(nameof(options), bits, $"weight bits lie in {QuantizationOptions.MinWeightBits}..{QuantizationOptions.MaxWeightBits}.");
            }
        }
        if (statistics is null && NeuronImportance.NeedsStatistics(options.Criterion))
        {
            throw new ArgumentException($"the {NeuronImportance.Name(options.Criterion)} criterion needs gradient statistics.");
        }
        float baseline = Evaluation.Accuracy(network, test);
        var prunable = PruningGroups.Find(network, inputShape).ToDictionary(g => g.Name);
        var layers = new List<LayerSensitivity>();
        foreach ((string name, Layer layer) in network.Layers)
        {
            if (layer is not WeightedLayer weighted)
            {
                continue;
            }
            var pruned = new List<PruningSensitivity>();
            if (prunable.TryGetValue(name, out PruningGroup? group))
            {
                foreach (double amount in options.Amounts)
                {
                    cancel.ThrowIfCancellationRequested();
                    PruningPlan plan = NeuronImportance.Rank(network, inputShape, options.Criterion, amount, [name], statistics: statistics, seed: options.Seed);
                    Sequential smaller = StructuredPruner.Apply(network, plan, inputShape);
                    float accuracy = Evaluation.Accuracy(smaller, test);
                    pruned.Add(new PruningSensitivity(amount, group.Neurons - plan.RemovedFrom(name).Length, accuracy));
                    progress?.Invoke(FormattableString.Invariant($"{name}: {100 * amount:0.##}% of {group.Neurons} neurons pruned -> {100 * accuracy:F2}%"));
                }
            }
            var quantized = new List<QuantizationSensitivity>();
            foreach (int bits in options.Bits)
            {
                cancel.ThrowIfCancellationRequested();
                float accuracy = WithQuantizedWeights(network, inputShape, name, weighted.Neurons, bits, options.PerChannel, test);
                quantized.Add(new QuantizationSensitivity(bits, accuracy));
                progress?.Invoke($"{name}: {bits}-bit weights -> {100 * accuracy:F2}%");
            }
            layers.Add(new LayerSensitivity(name, weighted.Neurons, weighted.Parameters.Sum(p => (long)p.Value.Length), pruned, quantized));
        }
        return new SensitivityReport(baseline, layers);
    }

    private static float WithQuantizedWeights(Sequential network, int[] inputShape, string layer, int outChannels, int bits, bool perChannel, IBatchSource test)
    {
        Sequential copy = StructuredPruner.Apply(network, new PruningPlan(), inputShape);  // an exact copy
        var weights = ((WeightedLayer)copy.Layers.Single(l => l.Name == layer).Layer).Weight.Value.Data;
        float[] original = weights.ToArray();
        Quantizer.FakeQuantizeWeights(original, outChannels, perChannel, bits, weights);
        return Evaluation.Accuracy(copy, test);
    }
}
