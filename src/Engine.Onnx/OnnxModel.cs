using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Inference;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Onnx;

/// <summary>
/// An ONNX model read into this engine: a float network (<see cref="Float"/>) or an int8 network (<see cref="Int8"/>,
/// running on the engine's own integer kernels), with the per-sample input shape and the input normalisation.
/// </summary>
public sealed class OnnxImport
{
    /// <summary>The float network, when the graph has no quantization operators; otherwise null.</summary>
    public Sequential? Float { get; init; }

    /// <summary>The int8 network, when the graph is quantized (QuantizeLinear / DequantizeLinear); otherwise null.</summary>
    public QuantizedNetwork? Int8 { get; init; }

    /// <summary>The per-sample input shape, for example [1, 32, 32] (C, H, W), without the batch dimension.</summary>
    public required int[] InputShape { get; init; }

    /// <summary>metadata_props <c>input_mean</c>: inputs are fed as (x - mean) / std; 0 when the file does not say.</summary>
    public float InputMean { get; init; }

    /// <summary>metadata_props <c>input_std</c>; 1 when the file does not say.</summary>
    public float InputStd { get; init; } = 1f;

    /// <summary>Every metadata_props entry of the file.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// A thread-safe <see cref="Predictor"/> over the imported network (the float network is copied, so the import can be
    /// changed afterwards without changing the predictor).
    /// </summary>
    public Predictor ToPredictor(PredictorOptions? options = null) => Int8 is not null
        ? Predictor.FromNetwork(Int8, options)
        : Predictor.FromNetwork(Float!, InputShape, InputMean, InputStd, options);

    /// <summary>The number of weights and biases.</summary>
    public long ParameterCount => Float?.ParameterCount
        ?? Int8!.Layers.OfType<QuantizedWeightedLayer>().Sum(l => (long)l.Weights.Length + l.Bias.Length);
}

/// <summary>
/// Reads ONNX models made of the operators this engine has layers for (docs/onnx.md): Conv (group 1, dilations 1,
/// square kernels, symmetric padding), Gemm (alpha = beta = 1, transA = 0) or MatMul followed by Add, Relu,
/// AveragePool (no padding), Flatten (axis 1) or Reshape to [N, features], Identity and Constant; and, for int8, the
/// QDQ form (QuantizeLinear / DequantizeLinear around those operators: uint8 activations, int8 weights per tensor or
/// per channel, int32 biases) with an optional exact integer last layer (MatMulInteger, Add, Cast, Mul), as
/// <see cref="OnnxExporter"/> writes it. The file is validated as it is read (lengths, element counts, shapes) before
/// anything is allocated for it, and anything outside that set is refused with an <see cref="InvalidDataException"/>
/// naming the file, the operator and the node.
/// </summary>
public static partial class OnnxModel
{
    /// <summary>Largest model file accepted.</summary>
    public const long MaxFileBytes = 1L << 31;

    /// <summary>Reads the ONNX model at <paramref name="path"/>.</summary>
    public static OnnxImport Load(string path)
    {
        long length = new FileInfo(path).Length;
        if (length > MaxFileBytes)
        {
            throw new InvalidDataException($"{Path.GetFileName(path)}: {length} bytes is larger than the {MaxFileBytes} an ONNX protobuf can hold.");
        }
        return Load(File.ReadAllBytes(path), Path.GetFileName(path));
    }

    /// <summary>Reads an ONNX model from its bytes; <paramref name="name"/> appears in error messages.</summary>
    public static OnnxImport Load(ReadOnlySpan<byte> bytes, string name)
    {
        OnnxModelProto model = OnnxModelProto.Read(bytes, name);
        OnnxGraph graph = OnnxGraph.Resolve(model, name);
        int[] inputShape = InputShape(graph, name);
        float mean = MetadataFloat(model, name, "input_mean", 0f), std = MetadataFloat(model, name, "input_std", 1f);
        if (!float.IsFinite(mean) || !(std > 0f) || !float.IsFinite(std))
        {
            throw new InvalidDataException($"{name}: input_std must be finite and > 0 and input_mean finite, got {mean} and {std}.");
        }
        bool quantized = graph.Chain.Any(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" or "MatMulInteger");
        return new OnnxImport
        {
            Float = quantized ? null : new FloatGraphReader(graph).Read(inputShape),
            Int8 = quantized ? new Int8GraphReader(graph).Read(inputShape, mean, std) : null,
            InputShape = inputShape,
            InputMean = mean,
            InputStd = std,
            Metadata = model.Metadata,
        };
    }

    /// <summary>Whether <paramref name="path"/> names an ONNX file (extension .onnx, any case), so that a command can pick this loader.</summary>
    public static bool IsOnnxFile(string path) =>
        string.Equals(Path.GetExtension(path), ".onnx", StringComparison.OrdinalIgnoreCase);

    // The per-sample input shape: the graph input's dimensions after the batch, or metadata input_shape.
    private static int[] InputShape(OnnxGraph graph, string name)
    {
        OnnxValueInfo input = graph.Input;
        if (input.ElementType is not (0 or (int)OnnxDataType.Float))
        {
            throw new InvalidDataException($"{name}: graph input '{input.Name}' has element type {input.ElementType}; only float inputs are supported.");
        }
        int[]? fromGraph = null;
        if (input.Dims.Length > 0)
        {
            if (input.Dims.Length is not (2 or 4) || input.Dims[1..].Any(d => d is null))
            {
                throw new InvalidDataException(
                    $"{name}: graph input '{input.Name}' has shape [{string.Join(", ", input.Dims.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "?"))}]; expected [N, C, H, W] or [N, features] with fixed sizes after the batch.");
            }
            fromGraph = [.. input.Dims[1..].Select(d => CheckDim(d!.Value, name))];
        }
        int[]? fromMetadata = null;
        if (graph.Model.Metadata.TryGetValue("input_shape", out string? text))
        {
            string[] parts = text.Split(',', StringSplitOptions.TrimEntries);
            fromMetadata = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                fromMetadata[i] = long.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out long d)
                    ? CheckDim(d, name)
                    : throw new InvalidDataException($"{name}: metadata input_shape '{text}' is not a list of sizes.");
            }
        }
        if (fromGraph is not null && fromMetadata is not null && !fromGraph.SequenceEqual(fromMetadata))
        {
            throw new InvalidDataException($"{name}: metadata input_shape '{text}' disagrees with the graph input's shape.");
        }
        int[] shape = fromGraph ?? fromMetadata
            ?? throw new InvalidDataException($"{name}: graph input '{input.Name}' has no shape, and there is no input_shape metadata.");
        if (shape.Length is not (1 or 3) || shape.Aggregate(1L, (p, d) => p * d) > 1 << 26)
        {
            throw new InvalidDataException($"{name}: per-sample input shape [{string.Join(", ", shape)}] is not supported.");
        }
        return shape;
    }

    private static int CheckDim(long d, string name) =>
        d is > 0 and <= 1 << 16 ? (int)d : throw new InvalidDataException($"{name}: input size {d} is out of range (1 to 65536).");

    private static float MetadataFloat(OnnxModelProto model, string name, string key, float fallback)
    {
        if (!model.Metadata.TryGetValue(key, out string? text))
        {
            return fallback;
        }
        return float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value)
            ? value
            : throw new InvalidDataException($"{name}: metadata '{key}' = '{text}' is not a number.");
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    internal static partial Regex PlainName();
}

/// <summary>
/// Layer names for an imported network: the node's name where it is a plain identifier not yet taken (our own exports,
/// most hand-built graphs), else the kind and a counter (conv1, relu2, fc1, ...), as torch's "/conv1/Conv" is not a
/// valid layer name. Counters continue per kind, so naming stays linear in the number of layers.
/// </summary>
internal sealed class LayerNames
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _next = new(StringComparer.Ordinal);

    public string For(OnnxNode node, string kind)
    {
        if (OnnxModel.PlainName().IsMatch(node.Name) && _used.Add(node.Name))
        {
            return node.Name;
        }
        for (int i = _next.GetValueOrDefault(kind, 1); ; i++)
        {
            if (_used.Add($"{kind}{i}"))
            {
                _next[kind] = i + 1;
                return $"{kind}{i}";
            }
        }
    }
}

/// <summary>Builds a float <see cref="Sequential"/> from a resolved graph, copying the weights into PyTorch's layout.</summary>
internal sealed class FloatGraphReader(OnnxGraph g)
{
    private readonly LayerNames _names = new();
    private readonly List<(string, Layer)> _layers = [];

    public Sequential Read(int[] inputShape)
    {
        int[] shape = inputShape;
        List<OnnxNode> chain = g.Chain;
        for (int i = 0; i < chain.Count; i++)
        {
            OnnxNode node = chain[i];
            string context = $"{g.File}: {node.Label}";
            switch (node.OpType)
            {
                case "Conv":
                {
                    OnnxTensor weight = g.Constant(node, 1).FloatTensor;
                    ConvShape c = OnnxOperators.Conv(g, node, weight.Dims, shape);
                    var conv = new Conv2d((int)weight.Dims[1], (int)weight.Dims[0], c.Kernel, c.Stride, c.Padding);
                    weight.ToFloats(context).CopyTo(conv.Weight.Value.Data);
                    Bias(node, g.OptionalConstant(node, 2), conv.OutChannels, context).CopyTo(conv.Bias.Value.Data);
                    shape = Add(node, "conv", conv, shape);
                    break;
                }
                case "Gemm":
                {
                    bool transB = OnnxOperators.Gemm(g, node);
                    OnnxTensor weight = g.Constant(node, 1).FloatTensor;
                    Linear linear = LinearFrom(node, weight, transB, shape, context);
                    Bias(node, g.OptionalConstant(node, 2), linear.OutFeatures, context).CopyTo(linear.Bias.Value.Data);
                    shape = Add(node, "fc", linear, shape);
                    break;
                }
                case "MatMul":
                {
                    Linear linear = LinearFrom(node, g.Constant(node, 1).FloatTensor, transposed: false, shape, context);
                    if (i + 1 < chain.Count && chain[i + 1].OpType == "Add")
                    {
                        OnnxNode add = chain[++i];
                        int constantInput = add.Inputs[0] == node.Outputs[0] ? 1 : 0;
                        Bias(add, g.Constant(add, constantInput), linear.OutFeatures, $"{g.File}: {add.Label}").CopyTo(linear.Bias.Value.Data);
                    }
                    shape = Add(node, "fc", linear, shape);
                    break;
                }
                case "Relu":
                    shape = Add(node, "relu", new ReLU(), shape);
                    break;
                case "AveragePool":
                {
                    (int kernel, int stride) = OnnxOperators.AveragePool(g, node, shape);
                    shape = Add(node, "pool", new AvgPool2d(kernel, stride), shape);
                    break;
                }
                case "Flatten" or "Reshape" or "Identity":
                    if (OnnxOperators.Flattens(g, node, shape))
                    {
                        shape = Add(node, "flatten", new Flatten(), shape);
                    }
                    break;
                case "Add":
                    throw g.Error(node, "Add is supported only as the bias right after a MatMul.");
                default:
                    throw g.Error(node, "is supported only inside an int8 (QuantizeLinear / DequantizeLinear) graph.");
            }
        }
        try
        {
            return new Sequential([.. _layers]);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{g.File}: {e.Message}", e);
        }
    }

    private int[] Add(OnnxNode node, string kind, Layer layer, int[] shape)
    {
        int[] output;
        try
        {
            output = layer.OutputShape([1, .. shape])[1..];
        }
        catch (ArgumentException e)
        {
            throw g.Error(node, e.Message);
        }
        _layers.Add((_names.For(node, kind), layer));
        return output;
    }

    // Weights [out, in] (transposed: as stored) or [in, out] (MatMul, Gemm with transB = 0), as a PyTorch Linear.
    private Linear LinearFrom(OnnxNode node, OnnxTensor weight, bool transposed, int[] shape, string context)
    {
        if (shape.Length != 1)
        {
            throw g.Error(node, $"expects a [N, features] input, got per-sample shape [{string.Join(", ", shape)}] (flatten first).");
        }
        if (weight.Dims.Length != 2 || weight.Dims.Any(d => d <= 0) || weight.Dims[transposed ? 1 : 0] != shape[0])
        {
            throw g.Error(node, $"weights [{string.Join(", ", weight.Dims)}] do not fit {shape[0]} input features.");
        }
        int inFeatures = shape[0], outFeatures = (int)weight.Dims[transposed ? 0 : 1];
        float[] values = weight.ToFloats(context);
        var linear = new Linear(inFeatures, outFeatures);
        Span<float> w = linear.Weight.Value.Data;
        for (int o = 0; o < outFeatures; o++)
        {
            for (int k = 0; k < inFeatures; k++)
            {
                w[o * inFeatures + k] = transposed ? values[o * inFeatures + k] : values[k * outFeatures + o];
            }
        }
        return linear;
    }

    private float[] Bias(OnnxNode node, ConstantValue? bias, int outputs, string context)
    {
        if (bias is null)
        {
            return new float[outputs];
        }
        long[] dims = bias.FloatTensor.Dims;
        bool fits = (dims.Length == 1 && dims[0] == outputs) || (dims.Length == 2 && dims[0] == 1 && dims[1] == outputs);
        return fits ? bias.FloatTensor.ToFloats(context) : throw g.Error(node, $"bias of shape [{string.Join(", ", dims)}] does not fit {outputs} outputs.");
    }
}
