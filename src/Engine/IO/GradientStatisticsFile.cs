using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Engine.Layers;
using Engine.Statistics;

namespace Engine.IO;

/// <summary>
/// Gradient statistics files (docs/file-formats.md, "Gradient statistics file"): the Welford state of a
/// <see cref="GradientStatistics"/> tracker as safetensors, bound to the architecture it was recorded on, with the
/// window the statistics were taken over.
/// </summary>
public static class GradientStatisticsFile
{
    /// <summary>The <c>format</c> metadata value of gradient statistics files.</summary>
    public const string Format = "engine.grad_stats";

    /// <summary>
    /// The metadata key binding a statistics file to the weights it was recorded on: <see cref="WeightsSha256"/> of the
    /// network when the file was saved (after training, so the weights of the model file written by the same run).
    /// </summary>
    public const string WeightsKey = "weights_sha256";

    /// <summary>
    /// The metadata key recording which steps the statistics describe (<see cref="StatisticsWindow.ToString"/>: "all" or
    /// "half-life:STEPS"); a file without it (written before it existed) holds statistics over all steps.
    /// </summary>
    public const string WindowKey = "window";

    /// <summary>
    /// SHA-256, as 64 lowercase hex digits, of the network's float parameters: the little-endian bytes of every
    /// parameter in state_dict order (<see cref="Sequential.NamedParameters"/>), one after the other.
    /// </summary>
    public static string WeightsSha256(Sequential network) => Sha256(network.NamedParameters().Select(p => p.Parameter));

    private static string Sha256(IEnumerable<Parameter> parameters)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> bytes = stackalloc byte[4];
        foreach (Parameter p in parameters)
        {
            ReadOnlySpan<float> values = p.Value.Data;
            if (BitConverter.IsLittleEndian)
            {
                hash.AppendData(MemoryMarshal.AsBytes(values));
            }
            else
            {
                foreach (float v in values)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes, v);
                    hash.AppendData(bytes);
                }
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// Writes the statistics as safetensors: for each parameter P, <c>P.grad_count</c> I64 [1], <c>P.grad_mean</c> and
    /// <c>P.grad_m2</c> F64 of P's shape; for each prunable layer L, <c>L.taylor_count</c>, <c>L.taylor_mean</c>,
    /// <c>L.taylor_m2</c> (t per neuron) and <c>L.taylor_abs_mean</c>, <c>L.taylor_abs_m2</c> (|t|). The metadata holds
    /// <c>format</c> = engine.grad_stats, the network's <c>architecture</c>, <see cref="WindowKey"/> and <see cref="WeightsKey"/>: the hash of the
    /// weights the tracked parameters hold now (save when training ends, so they are the weights the model file holds).
    /// </summary>
    public static void Save(GradientStatistics statistics, string path)
    {
        var tensors = new List<SafeTensor>();
        foreach (var p in statistics.ParameterStatistics)
        {
            int[] shape = p.Parameter.Value.Shape.ToArray();
            tensors.Add(SafeTensor.FromInt64s(p.Name + ".grad_count", [1], [p.Stats.Count]));
            tensors.Add(SafeTensor.FromDoubles(p.Name + ".grad_mean", shape, p.Stats.Mean));
            tensors.Add(SafeTensor.FromDoubles(p.Name + ".grad_m2", shape, p.Stats.M2));
        }
        foreach (var n in statistics.NeuronStatistics)
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
            ["architecture"] = statistics.Architecture,
            ["steps"] = statistics.Count.ToString(CultureInfo.InvariantCulture),
            [WindowKey] = statistics.Window.ToString(),
            // The tracked parameters are the network's, in state_dict order: this is WeightsSha256 of the network.
            [WeightsKey] = Sha256(statistics.ParameterStatistics.Select(p => p.Parameter)),
        };
        new SafeTensorsFile(tensors, metadata).Write(path);
    }

    /// <summary>
    /// Reads statistics saved by <see cref="Save"/> for <paramref name="network"/>; a file from another architecture (other
    /// layers or other shapes) is refused with an error naming the file and the first difference, and so is a file whose
    /// <see cref="WeightsKey"/> is not the hash of <paramref name="network"/>'s weights (a file without it still loads).
    /// </summary>
    public static GradientStatistics Load(string path, Sequential network, int[] inputShape) =>
        FromFile(SafeTensorsFile.Read(path), Path.GetFileName(path), network, inputShape);

    // As Load, for a file already read; name appears in errors.
    internal static GradientStatistics FromFile(SafeTensorsFile file, string name, Sequential network, int[] inputShape)
    {
        if (!file.Metadata.TryGetValue("format", out string? format) || format != Format)
        {
            throw new InvalidDataException($"{name}: not a gradient statistics file (format '{format ?? "none"}', expected {Format}).");
        }
        string architecture = network.DescribeArchitecture();
        if (file.Metadata.TryGetValue("architecture", out string? recorded) && recorded != architecture)
        {
            throw new InvalidDataException($"{name}: statistics of architecture '{recorded}' do not match the model's '{architecture}'.");
        }
        // Files written before the key existed carry no hash and still load; a hash of other weights is refused.
        if (file.Metadata.TryGetValue(WeightsKey, out string? weights) && weights != WeightsSha256(network))
        {
            throw new InvalidDataException(
                $"{name}: statistics recorded on other weights ({WeightsKey} {weights}, the model's is {WeightsSha256(network)}): use the statistics written by the training run that wrote the model.");
        }
        // Files written before the key existed hold statistics over all steps; any other text than Save writes is refused.
        StatisticsWindow window = StatisticsWindow.All;
        if (file.Metadata.TryGetValue(WindowKey, out string? windowText) && !StatisticsWindow.TryParse(windowText, out window))
        {
            throw new InvalidDataException(
                $"{name}: metadata '{WindowKey}' is '{windowText}'; expected 'all' or 'half-life:STEPS' with STEPS a whole number from 1 to {StatisticsWindow.MaxHalfLifeSteps}.");
        }
        var parameters = network.NamedParameters().Select(p =>
        {
            int[] shape = p.Parameter.Value.Shape.ToArray();
            return (p.Name, p.Parameter, Read(file, name, p.Name, shape, ".grad_mean", ".grad_m2", ".grad_count", window));
        }).ToArray();
        var neurons = PruningGroups.Find(network, inputShape).Select(g =>
        {
            return (g, g.Layer.Weight, g.Layer.Bias,
                Read(file, name, g.Name, [g.Neurons], ".taylor_mean", ".taylor_m2", ".taylor_count", window),
                Read(file, name, g.Name, [g.Neurons], ".taylor_abs_mean", ".taylor_abs_m2", ".taylor_count", window),
                new double[g.Neurons]);
        }).ToArray();
        return new GradientStatistics(parameters, neurons, architecture, window);
    }

    private static RunningStatistics Read(SafeTensorsFile file, string name, string baseName, int[] shape, string meanSuffix, string m2Suffix, string countSuffix, StatisticsWindow window)
    {
        SafeTensor Get(string suffix, int[] expectedShape)
        {
            SafeTensor t = file[baseName + suffix];
            SafeTensorDType dtype = suffix == countSuffix ? SafeTensorDType.I64 : SafeTensorDType.F64;
            if (t.DType != dtype)
            {
                throw new InvalidDataException($"{name}: tensor '{t.Name}' is {t.DType}, expected {dtype}.");
            }
            if (!t.Shape.AsSpan().SequenceEqual(expectedShape))
            {
                throw new InvalidDataException(
                    $"{name}: tensor '{t.Name}' has shape {FloatTensor.Format(t.Shape)}, the model needs {FloatTensor.Format(expectedShape)}: statistics of another architecture?");
            }
            return t;
        }
        long count = Get(countSuffix, [1]).ToInt64s()[0];
        if (count < 0)
        {
            throw new InvalidDataException($"{name}: tensor '{baseName}{countSuffix}' is {count}; a count cannot be negative.");
        }
        double[] mean = Get(meanSuffix, shape).ToDoubles(), m2 = Get(m2Suffix, shape).ToDoubles();
        ModelLimits.CheckFinite<double>(mean, name, baseName + meanSuffix);
        ModelLimits.CheckFinite<double>(m2, name, baseName + m2Suffix);
        int negative = Array.FindIndex(m2, v => v < 0);
        if (negative >= 0)
        {
            throw new InvalidDataException($"{name}: tensor '{baseName}{m2Suffix}' holds {m2[negative]} at index {negative}; M2, a sum of squares, cannot be negative.");
        }
        try
        {
            return RunningStatistics.FromState(count, mean, m2, window);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{name}: statistics of '{baseName}' are invalid: {e.Message}", e);
        }
    }
}
