using System.Globalization;
using System.Numerics.Tensors;
using Engine.IO;
using Engine.Layers;
using Engine.Pruning;
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
/// </summary>
public sealed class GradientStatistics : ITrainingObserver
{
    /// <summary>The <c>format</c> metadata value of gradient statistics files.</summary>
    public const string Format = "engine.grad_stats";

    private readonly (string Name, Parameter Parameter, RunningStatistics Stats)[] _parameters;
    private readonly (PruningGroup Group, Parameter Weight, Parameter Bias, RunningStatistics Taylor, RunningStatistics TaylorAbs, double[] Scratch)[] _neurons;
    private readonly string _architecture;

    /// <summary>A tracker for every parameter and prunable layer of <paramref name="network"/>.</summary>
    public GradientStatistics(Sequential network, int[] inputShape)
    {
        _architecture = ModelFile.DescribeArchitecture(network);
        _parameters = network.NamedParameters().Select(p => (p.Name, p.Parameter, new RunningStatistics(p.Parameter.Value.Length))).ToArray();
        _neurons = PruningGroups.Find(network, inputShape).Select(g =>
        {
            (Parameter w, Parameter b) = Weights(g);
            return (g, w, b, new RunningStatistics(g.Neurons), new RunningStatistics(g.Neurons), new double[g.Neurons]);
        }).ToArray();
    }

    private GradientStatistics((string, Parameter, RunningStatistics)[] parameters,
        (PruningGroup, Parameter, Parameter, RunningStatistics, RunningStatistics, double[])[] neurons, string architecture)
    {
        _parameters = parameters;
        _neurons = neurons;
        _architecture = architecture;
    }

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

    /// <summary>
    /// Writes the statistics as safetensors: for each parameter P, <c>P.grad_count</c> I64 [1], <c>P.grad_mean</c> and
    /// <c>P.grad_m2</c> F64 of P's shape; for each prunable layer L, <c>L.taylor_count</c>, <c>L.taylor_mean</c>,
    /// <c>L.taylor_m2</c> (t per neuron) and <c>L.taylor_abs_mean</c>, <c>L.taylor_abs_m2</c> (|t|). The metadata holds
    /// <c>format</c> = engine.grad_stats and the network's <c>architecture</c>.
    /// </summary>
    public void Save(string path)
    {
        var tensors = new List<SafeTensor>();
        foreach (var p in _parameters)
        {
            int[] shape = p.Parameter.Value.Shape.ToArray();
            tensors.Add(SafeTensor.FromInt64s(p.Name + ".grad_count", [1], [p.Stats.Count]));
            tensors.Add(SafeTensor.FromDoubles(p.Name + ".grad_mean", shape, p.Stats.Mean));
            tensors.Add(SafeTensor.FromDoubles(p.Name + ".grad_m2", shape, p.Stats.M2));
        }
        foreach (var n in _neurons)
        {
            tensors.Add(SafeTensor.FromInt64s(n.Group.Name + ".taylor_count", [1], [n.Taylor.Count]));
            tensors.Add(SafeTensor.FromDoubles(n.Group.Name + ".taylor_mean", [n.Group.Neurons], n.Taylor.Mean));
            tensors.Add(SafeTensor.FromDoubles(n.Group.Name + ".taylor_m2", [n.Group.Neurons], n.Taylor.M2));
            tensors.Add(SafeTensor.FromDoubles(n.Group.Name + ".taylor_abs_mean", [n.Group.Neurons], n.TaylorAbs.Mean));
            tensors.Add(SafeTensor.FromDoubles(n.Group.Name + ".taylor_abs_m2", [n.Group.Neurons], n.TaylorAbs.M2));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["architecture"] = _architecture,
            ["steps"] = Count.ToString(CultureInfo.InvariantCulture),
        };
        new SafeTensorsFile(tensors, metadata).Write(path);
    }

    /// <summary>
    /// Reads statistics saved by <see cref="Save"/> for <paramref name="network"/>; a file from another architecture (other
    /// layers or other shapes) is refused with an error naming the file and the first difference.
    /// </summary>
    public static GradientStatistics Load(string path, Sequential network, int[] inputShape)
    {
        SafeTensorsFile file = SafeTensorsFile.Read(path);
        string name = Path.GetFileName(path);
        if (!file.Metadata.TryGetValue("format", out string? format) || format != Format)
        {
            throw new InvalidDataException($"{name}: not a gradient statistics file (format '{format ?? "none"}', expected {Format}).");
        }
        string architecture = ModelFile.DescribeArchitecture(network);
        if (file.Metadata.TryGetValue("architecture", out string? recorded) && recorded != architecture)
        {
            throw new InvalidDataException($"{name}: statistics of architecture '{recorded}' do not match the model's '{architecture}'.");
        }
        var parameters = network.NamedParameters().Select(p =>
        {
            int[] shape = p.Parameter.Value.Shape.ToArray();
            return (p.Name, p.Parameter, Read(file, name, p.Name, shape, ".grad_mean", ".grad_m2", ".grad_count"));
        }).ToArray();
        var neurons = PruningGroups.Find(network, inputShape).Select(g =>
        {
            (Parameter w, Parameter b) = Weights(g);
            return (g, w, b,
                Read(file, name, g.Name, [g.Neurons], ".taylor_mean", ".taylor_m2", ".taylor_count"),
                Read(file, name, g.Name, [g.Neurons], ".taylor_abs_mean", ".taylor_abs_m2", ".taylor_count"),
                new double[g.Neurons]);
        }).ToArray();
        return new GradientStatistics(parameters, neurons, architecture);
    }

    private static RunningStatistics Read(SafeTensorsFile file, string name, string baseName, int[] shape, string meanSuffix, string m2Suffix, string countSuffix)
    {
        SafeTensor Get(string suffix, int[] expectedShape)
        {
            SafeTensor t = file[baseName + suffix];
            if (!t.Shape.AsSpan().SequenceEqual(expectedShape))
            {
                throw new InvalidDataException(
                    $"{name}: tensor '{t.Name}' has shape {Tensor.Format(t.Shape)}, the model needs {Tensor.Format(expectedShape)}: statistics of another architecture?");
            }
            return t;
        }
        long count = Get(countSuffix, [1]).ToInt64s()[0];
        try
        {
            return RunningStatistics.FromState(count, Get(meanSuffix, shape).ToDoubles(), Get(m2Suffix, shape).ToDoubles());
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{name}: statistics of '{baseName}' are invalid: {e.Message}", e);
        }
    }

    private static (Parameter Weight, Parameter Bias) Weights(PruningGroup g) => g.Layer switch
    {
        Conv2d c => (c.Weight, c.Bias),
        Linear l => (l.Weight, l.Bias),
        _ => throw new NotSupportedException($"layer '{g.Name}' is not prunable."),
    };
}
