using System.Numerics.Tensors;
using Engine.Layers;
using Engine.Training;

namespace Engine.Statistics;

/// <summary>Per-neuron summaries of the gradient statistics of one prunable layer (each array has one entry per neuron).</summary>
/// <param name="Layer">The layer's name.</param>
/// <param name="MeanAbsMean">Mean over the neuron's incoming weights and bias of |E[g]|, the size of the average gradient.</param>
/// <param name="RmsStd">Root mean square over the same parameters of the standard deviation of g, its spread.</param>
/// <param name="OutputGradientMean">E of the gradient with respect to the neuron's output, summed over batch and space per step.</param>
/// <param name="OutputGradientStd">Its standard deviation across steps.</param>
/// <param name="Taylor">E|sum of g w over the neuron's incoming weights and bias| (first-order Taylor estimate of the loss change on removal).</param>
public sealed record NeuronGradientSummary(string Layer, double[] MeanAbsMean, double[] RmsStd, double[] OutputGradientMean, double[] OutputGradientStd, double[] Taylor);

/// <summary>
/// Tracks, while training, Welford running statistics of every parameter's gradient (count, mean, M2 per element,
/// one observation per optimiser step) and, per neuron of every prunable layer, of the first-order Taylor term
/// t = sum of g w over the neuron's incoming weights and bias (Molchanov et al., 2019, "Importance estimation for
/// neural network pruning").
/// <para>
/// The gradient with respect to a neuron's output, summed over the batch and space, needs no extra hook: it is exactly
/// the gradient of the neuron's bias (db = sum of dy), so its statistics are the bias's.
/// </para>
/// <para>
/// <see cref="Window"/> says which steps the statistics describe: all of training (the default; the large gradients of
/// the early epochs then dominate means and spreads) or exponentially decaying weights with a half-life in steps, which
/// describe the network as training leaves it (see <see cref="StatisticsWindow"/>). Every tracker of one
/// <see cref="GradientStatistics"/> uses the same window.
/// </para>
/// </summary>
public sealed class GradientStatistics : ITrainingObserver
{
    private readonly (string Name, Parameter Parameter, RunningStatistics Stats)[] _parameters;
    private readonly (PruningGroup Group, Parameter Weight, Parameter Bias, RunningStatistics Taylor, RunningStatistics TaylorAbs, double[] Scratch)[] _neurons;
    private readonly string _architecture;

    /// <summary>A tracker over all of training for every parameter and prunable layer of <paramref name="network"/>.</summary>
    public GradientStatistics(Sequential network, int[] inputShape) : this(network, inputShape, StatisticsWindow.All)
    {
    }

    /// <summary>A tracker for every parameter and prunable layer of <paramref name="network"/>, weighting steps as <paramref name="window"/> says.</summary>
    public GradientStatistics(Sequential network, int[] inputShape, StatisticsWindow window)
    {
        _architecture = network.DescribeArchitecture();
        Window = window;
        _parameters = network.NamedParameters().Select(p => (p.Name, p.Parameter, new RunningStatistics(p.Parameter.Value.Length, window))).ToArray();
        _neurons = PruningGroups.Find(network, inputShape).Select(g =>
        {
            return (g, g.Layer.Weight, g.Layer.Bias, new RunningStatistics(g.Neurons, window), new RunningStatistics(g.Neurons, window), new double[g.Neurons]);
        }).ToArray();
    }

    /// <summary>Statistics restored from saved state (a statistics file read back; the arrays are taken over; every tracker's window is <paramref name="window"/>).</summary>
    internal GradientStatistics((string, Parameter, RunningStatistics)[] parameters,
        (PruningGroup, Parameter, Parameter, RunningStatistics, RunningStatistics, double[])[] neurons, string architecture, StatisticsWindow window)
    {
        _parameters = parameters;
        _neurons = neurons;
        _architecture = architecture;
        Window = window;
    }

    /// <summary>Which steps the statistics describe: all of training, or an exponentially weighted window.</summary>
    public StatisticsWindow Window { get; }

    /// <summary>The architecture the statistics were recorded on (<see cref="Sequential.DescribeArchitecture"/>).</summary>
    internal string Architecture => _architecture;

    /// <summary>Every parameter's gradient statistics, in the network's order.</summary>
    internal IEnumerable<(string Name, Parameter Parameter, RunningStatistics Stats)> ParameterStatistics => _parameters;

    /// <summary>Every prunable layer's Taylor-term statistics (signed and absolute), in layer order.</summary>
    internal IEnumerable<(PruningGroup Group, RunningStatistics Taylor, RunningStatistics TaylorAbs)> NeuronStatistics =>
        _neurons.Select(n => (n.Group, n.Taylor, n.TaylorAbs));

    /// <summary>Observations so far (optimiser steps).</summary>
    public long Count => _parameters.Length == 0 ? 0 : _parameters[0].Stats.Count;

    /// <summary>The running statistics of the gradient of parameter <paramref name="name"/> (for example "fc1.weight").</summary>
    public RunningStatistics this[string name] =>
        _parameters.FirstOrDefault(p => p.Name == name).Stats ?? throw new KeyNotFoundException($"no statistics for parameter '{name}'.");

    /// <summary>Observes every gradient of the step that just ran backward.</summary>
    public void OnGradients(Sequential network)
    {
        foreach (var p in _parameters)
        {
            p.Stats.Observe(p.Parameter.Gradient.Data);
        }
        foreach (var n in _neurons)
        {
            int row = n.Group.ParametersPerNeuron - 1;
            ReadOnlySpan<float> w = n.Weight.Value.Data, g = n.Weight.Gradient.Data;
            ReadOnlySpan<float> b = n.Bias.Value.Data, gb = n.Bias.Gradient.Data;
            for (int i = 0; i < n.Scratch.Length; i++)
            {
                n.Scratch[i] = TensorPrimitives.Dot(w.Slice(i * row, row), g.Slice(i * row, row)) + (double)b[i] * gb[i];
            }
            n.Taylor.Observe(n.Scratch);
            for (int i = 0; i < n.Scratch.Length; i++)
            {
                n.Scratch[i] = Math.Abs(n.Scratch[i]);
            }
            n.TaylorAbs.Observe(n.Scratch);
        }
    }

    /// <summary>Per-neuron summaries of every prunable layer, in layer order.</summary>
    public IReadOnlyList<NeuronGradientSummary> Summaries() => _neurons.Select(n => Summarize(n.Group, n.TaylorAbs)).ToList();

    /// <summary>Per-neuron summaries of the prunable layer <paramref name="layer"/>.</summary>
    public NeuronGradientSummary Summary(string layer)
    {
        foreach (var n in _neurons)
        {
            if (n.Group.Name == layer)
            {
                return Summarize(n.Group, n.TaylorAbs);
            }
        }
        throw new KeyNotFoundException($"no gradient statistics for prunable layer '{layer}'.");
    }

    private NeuronGradientSummary Summarize(PruningGroup group, RunningStatistics taylorAbs)
    {
        RunningStatistics w = this[group.Name + ".weight"], b = this[group.Name + ".bias"];
        int neurons = group.Neurons, row = group.ParametersPerNeuron - 1;
        var weightVariance = new double[w.Length];
        var biasVariance = new double[b.Length];
        w.PopulationVariance(weightVariance);
        b.PopulationVariance(biasVariance);
        var meanAbsMean = new double[neurons];
        var rmsStd = new double[neurons];
        var outputStd = new double[neurons];
        for (int i = 0; i < neurons; i++)
        {
            double absSum = Math.Abs(b.Mean[i]), varianceSum = biasVariance[i];
            for (int j = i * row; j < (i + 1) * row; j++)
            {
                absSum += Math.Abs(w.Mean[j]);
                varianceSum += weightVariance[j];
            }
            meanAbsMean[i] = absSum / (row + 1);
            rmsStd[i] = Math.Sqrt(varianceSum / (row + 1));
            outputStd[i] = Math.Sqrt(biasVariance[i]);
        }
        return new NeuronGradientSummary(group.Name, meanAbsMean, rmsStd, b.Mean.ToArray(), outputStd, taylorAbs.Mean.ToArray());
    }

}
