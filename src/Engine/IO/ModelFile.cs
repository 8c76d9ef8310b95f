using System.Globalization;
using System.Text;
using Engine.Layers;

namespace Engine.IO;

/// <summary>A float network loaded from a file, with the input preprocessing it was trained with.</summary>
public sealed record FloatModel(Sequential Network, float InputMean, float InputStd, int[] InputShape, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Float model files: safetensors with one F32 tensor per parameter under its PyTorch state_dict name
/// (conv1.weight [32, 1, 3, 3], ...), so that PyTorch's <c>load_state_dict(load_file(path))</c> accepts them, and
/// <c>__metadata__</c> holding <c>format</c> = engine.float, <c>input_mean</c>, <c>input_std</c>, <c>input_shape</c>
/// and <c>architecture</c> (the layer sequence; sizes come from the tensor shapes). A file without an architecture
/// (for example one saved from PyTorch) is read as the seed network's topology: 3x3 "same" convolutions with ReLU,
/// average pooling down to the first linear layer's input, flatten, linear layers with ReLU between them.
/// </summary>
public static class ModelFile
{
    /// <summary>The <c>format</c> metadata value of float model files.</summary>
    public const string FloatFormat = "engine.float";

    /// <summary>Writes <paramref name="network"/> to <paramref name="path"/> atomically (a failed write leaves any previous file intact).</summary>
    public static void SaveFloat(Sequential network, string path, float inputMean, float inputStd, int[] inputShape,
        IReadOnlyDictionary<string, string>? extraMetadata = null) =>
        ToFile(network, inputMean, inputStd, inputShape, extraMetadata).Write(path);

    /// <summary>The bytes <see cref="SaveFloat"/> would write (for sizes, tests, and copies made in memory).</summary>
    public static byte[] ToBytes(Sequential network, float inputMean, float inputStd, int[] inputShape) =>
        ToFile(network, inputMean, inputStd, inputShape, null).ToBytes();

    private static SafeTensorsFile ToFile(Sequential network, float inputMean, float inputStd, int[] inputShape,
        IReadOnlyDictionary<string, string>? extraMetadata)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = FloatFormat,
            ["input_mean"] = inputMean.ToString("R", CultureInfo.InvariantCulture),
            ["input_std"] = inputStd.ToString("R", CultureInfo.InvariantCulture),
            ["input_shape"] = string.Join(",", inputShape),
            ["architecture"] = network.DescribeArchitecture(),
        };
        if (extraMetadata is not null)
        {
            foreach ((string key, string value) in extraMetadata)
            {
                metadata.TryAdd(key, value);
            }
        }
        var tensors = network.NamedParameters()
            .Select(p => SafeTensor.FromFloats(p.Name, p.Parameter.Value.Shape.ToArray(), p.Parameter.Value.Data))
            .ToList();
        return new SafeTensorsFile(tensors, metadata);
    }

    /// <summary>Reads a float model, rebuilding the network from the tensor names and shapes and checking it end to end.</summary>
    public static FloatModel LoadFloat(string path) => FromFile(SafeTensorsFile.Read(path), Path.GetFileName(path));

    /// <summary>Reads a float model from bytes; <paramref name="name"/> appears in error messages.</summary>
    public static FloatModel LoadFloat(ReadOnlySpan<byte> bytes, string name) => FromFile(SafeTensorsFile.Read(bytes, name), name);

    /// <summary>The float model a read safetensors file describes; <paramref name="name"/> appears in error messages.</summary>
    public static FloatModel FromFile(SafeTensorsFile file, string name)
    {
        if (file.Metadata.TryGetValue("format", out string? format) && format != FloatFormat)
        {
            throw new InvalidDataException($"{name}: format '{format}' is not a float model ({FloatFormat}).");
        }
        float mean = ReadFloat(file, name, "input_mean", 0f);
        float std = ReadFloat(file, name, "input_std", 1f);
        double bound = ModelLimits.CheckNormalisation(mean, std, name);
        int[] inputShape = file.Metadata.TryGetValue("input_shape", out string? shapeText)
            ? ParseShape(shapeText, name)
            : [1, SeedNetwork.InputSize, SeedNetwork.InputSize];

        Sequential network = file.Metadata.TryGetValue("architecture", out string? architecture)
            ? BuildFromArchitecture(architecture, file, name)
            : BuildSeedTopology(file, name, inputShape);

        var expected = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string parameterName, Parameter parameter) in network.NamedParameters())
        {
            expected.Add(parameterName);
            if (!file.TryGet(parameterName, out SafeTensor tensor))
            {
                throw new InvalidDataException($"{name}: tensor '{parameterName}' is missing.");
            }
            if (tensor.DType != SafeTensorDType.F32)
            {
                throw new InvalidDataException($"{name}: tensor '{parameterName}' is {tensor.DType}, expected F32.");
            }
            if (!tensor.Shape.AsSpan().SequenceEqual(parameter.Value.Shape))
            {
                throw new InvalidDataException(
                    $"{name}: tensor '{parameterName}' has shape {FloatTensor.Format(tensor.Shape)}, the network needs {FloatTensor.Format(parameter.Value.Shape)}.");
            }
            float[] values = tensor.ToFloats();
            ModelLimits.CheckFinite<float>(values, name, parameterName);
            values.CopyTo(parameter.Value.Data);
        }
        string? unexpected = file.Tensors.Select(t => t.Name).FirstOrDefault(n => !expected.Contains(n));
        if (unexpected is not null)
        {
            throw new InvalidDataException($"{name}: unexpected tensor '{unexpected}' (not a parameter of the network it describes).");
        }
        int[] shape = [1, .. inputShape];
        foreach ((string layerName, Layer layer) in network.Layers)
        {
            try
            {
                shape = layer.OutputShape(shape);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{name}: the layers do not fit together: layer '{layerName}': {e.Message}", e);
            }
            ModelLimits.Check(shape.AsSpan(1), name, $"the output of layer '{layerName}'");
            if (layer is Conv2d conv)
            {
                ModelLimits.CheckConvolution(conv.InChannels, conv.KernelSize, (long)shape[2] * shape[3], name, layerName);
            }
            bound = OutputBound(layer, bound);
            if (bound > ModelLimits.MaxOutputBound)
            {
                throw new InvalidDataException(
                    $"{name}: the weights of layer '{layerName}' can drive its output to {bound:G3} for inputs made from pixels, past {ModelLimits.MaxOutputBound:G0}: float arithmetic would overflow.");
            }
        }
        return new FloatModel(network, mean, std, inputShape, file.Metadata);
    }

    private static Sequential BuildFromArchitecture(string architecture, SafeTensorsFile file, string name)
    {
        var layers = new List<(string, Layer)>();
        foreach (ArchitectureEntry entry in ArchitectureText.Parse(architecture, name, allowFusedRelu: false))
        {
            layers.Add((entry.Name, entry.Kind switch
            {
                ArchitectureKind.Conv2d => Conv(file, name, entry.Name, entry.Kernel, entry.Stride, entry.Padding),
                ArchitectureKind.Linear => Fc(file, name, entry.Name),
                ArchitectureKind.ReLU => new ReLU(),
                ArchitectureKind.Flatten => new Flatten(),
                _ => new AvgPool2d(entry.Kernel, entry.Stride),
            }));
        }
        return Build(layers, name);
    }

    private static Sequential Build(List<(string, Layer)> layers, string name)
    {
        try
        {
            return new Sequential([.. layers]);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{name}: the layers cannot form a network: {e.Message}", e);
        }
    }

    private static Sequential BuildSeedTopology(SafeTensorsFile file, string name, int[] inputShape)
    {
        var weights = file.Tensors.Where(t => t.Name.EndsWith(".weight", StringComparison.Ordinal)).ToList();
        SafeTensor? badName = weights.FirstOrDefault(t => !ArchitectureText.IsValidName(t.Name[..^7]));
        if (badName is not null)
        {
            throw new InvalidDataException(
                $"{name}: tensor '{badName.Name}' does not name a layer: with no architecture in the metadata, a layer name is one or more of A-Z, a-z, 0-9, '_' and '-'.");
        }
        var byNumber = Comparer<string>.Create(ArchitectureText.CompareNames);
        var convs = weights.Where(t => t.Shape.Length == 4).Select(t => t.Name[..^7]).Order(byNumber).ToList();
        var fcs = weights.Where(t => t.Shape.Length == 2).Select(t => t.Name[..^7]).Order(byNumber).ToList();
        if (convs.Count == 0 || fcs.Count == 0)
        {
            throw new InvalidDataException($"{name}: no architecture in the metadata, and the tensors do not describe convolutions followed by linear layers.");
        }
        var layers = new List<(string, Layer)>();
        int channels = 0, index = 0;
        foreach (string conv in convs)
        {
            int k = file[conv + ".weight"].Shape[2];
            var layer = Conv(file, name, conv, k, 1, (k - 1) / 2);
            channels = layer.OutChannels;
            layers.Add((conv, layer));
            layers.Add(($"relu{++index}", new ReLU()));
        }
        // Pool the last feature map down to what the first linear layer reads: side = sqrt(in_features / channels).
        int features = file[fcs[0] + ".weight"].Shape[1];
        int side = (int)Math.Round(Math.Sqrt((double)features / channels));
        if (side <= 0 || side * side * channels != features || inputShape[1] % side != 0)
        {
            throw new InvalidDataException($"{name}: {fcs[0]} reads {features} features, which no square pooling of {channels} channels gives.");
        }
        int pool = inputShape[1] / side;
        layers.Add(("pool", new AvgPool2d(pool, pool)));
        layers.Add(("flatten", new Flatten()));
        for (int i = 0; i < fcs.Count; i++)
        {
            layers.Add((fcs[i], Fc(file, name, fcs[i])));
            if (i < fcs.Count - 1)
            {
                layers.Add(($"relu{++index}", new ReLU()));
            }
        }
        return Build(layers, name);
    }

    // The largest magnitude the layer's output can reach when every input has magnitude at most `input`:
    // max over outputs of (sum of |weights| x input + |bias|); other layers do not grow it.
    private static double OutputBound(Layer layer, double input)
    {
        if (layer is not WeightedLayer weighted)
        {
            return input;
        }
        ReadOnlySpan<float> w = weighted.Weight.Value.Data, b = weighted.Bias.Value.Data;
        int rows = b.Length, row = w.Length / Math.Max(rows, 1);
        double largest = 0;
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            foreach (float v in w.Slice(r * row, row))
            {
                sum += Math.Abs(v);
            }
            largest = Math.Max(largest, sum * input + Math.Abs(b[r]));
        }
        return largest;
    }

    private static Conv2d Conv(SafeTensorsFile file, string name, string layer, int kernel, int stride, int padding)
    {
        int[] shape = Weight(file, name, layer, 4);
        if (shape[2] != kernel || shape[3] != kernel)
        {
            throw new InvalidDataException($"{name}: tensor '{layer}.weight' has shape {FloatTensor.Format(shape)}, expected a {kernel}x{kernel} kernel.");
        }
        if (kernel <= 0 || stride <= 0 || padding < 0)
        {
            throw new InvalidDataException($"{name}: layer '{layer}' has kernel {kernel}, stride {stride}, padding {padding}.");
        }
        return new Conv2d(shape[1], shape[0], kernel, stride, padding);
    }

    private static Linear Fc(SafeTensorsFile file, string name, string layer)
    {
        int[] shape = Weight(file, name, layer, 2);
        return new Linear(shape[1], shape[0]);
    }

    private static int[] Weight(SafeTensorsFile file, string name, string layer, int rank)
    {
        if (!file.TryGet(layer + ".weight", out SafeTensor weight))
        {
            throw new InvalidDataException($"{name}: tensor '{layer}.weight' is missing.");
        }
        if (weight.Shape.Length != rank || weight.Shape.Any(d => d <= 0))
        {
            throw new InvalidDataException($"{name}: tensor '{layer}.weight' has shape {FloatTensor.Format(weight.Shape)}, expected {rank} positive dimensions.");
        }
        return weight.Shape;
    }

    private static float ReadFloat(SafeTensorsFile file, string name, string key, float fallback)
    {
        if (!file.Metadata.TryGetValue(key, out string? text))
        {
            return fallback;
        }
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value)
            ? value
            : throw new InvalidDataException($"{name}: metadata '{key}' = '{text}' is not a number.");
    }

    private static int[] ParseShape(string text, string name)
    {
        int[] shape = ParseInts(text, name, "input_shape");
        if (shape.Length != 3 || shape.Any(d => d <= 0))
        {
            throw new InvalidDataException($"{name}: metadata input_shape '{text}' is not three positive sizes C,H,W.");
        }
        ModelLimits.Check(shape, name, "metadata input_shape");
        return shape;
    }

    private static int[] ParseInts(string text, string name, string what)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]))
            {
                throw new InvalidDataException($"{name}: '{what}' holds '{parts[i]}', not an integer.");
            }
        }
        return values;
    }
}
