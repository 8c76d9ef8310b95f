using System.Globalization;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Onnx;

/// <summary>
/// Writes this engine's networks as ONNX models (opset 13, IR version 8) that ONNX Runtime and <see cref="OnnxModel"/>
/// both read. The graph input is <see cref="InputName"/>, float [N, C, H, W] with a dynamic batch N (already
/// normalised: (pixel - input_mean) / input_std); the output is <see cref="OutputName"/>, float logits [N, classes].
/// metadata_props carry <c>format</c> (engine.float or engine.int8), <c>input_mean</c>, <c>input_std</c>,
/// <c>input_shape</c> (C,H,W) and, for int8, <c>logits</c>.
/// <para>
/// Float networks become Conv / Relu / AveragePool / Flatten / Gemm (transB = 1, PyTorch's [out, in] weights), one node
/// per layer, named after the layer.
/// </para>
/// <para>
/// Int8 networks use the QDQ form rather than QOperator (QLinearConv and friends), for three reasons: the standard
/// operator set has no QOperator linear layer that takes both per-channel weight scales and an int32 bias (QLinearMatMul
/// has no bias), so QOperator would need reshapes into 1x1 convolutions; QDQ keeps a ReLU as its own node, so a fused
/// ReLU survives a round trip; and ONNX Runtime's quantize_static writes QDQ, so one import path reads both its files
/// and ours. Each hidden layer is DequantizeLinear(codes) -> Conv or Gemm over DequantizeLinear(int8 weights, per
/// channel: axis 0) and DequantizeLinear(int32 bias, scale = input_scale x weight_scale[c]) -> Relu when fused ->
/// QuantizeLinear(output scale, zero point); average pooling is DequantizeLinear -> AveragePool -> Add(a quarter of
/// the mean's resolution, so that ties round up as ours do rather than to even) -> QuantizeLinear with the input's own
/// scale and zero point, as ours keeps them; Flatten moves the uint8 codes. ONNX Runtime fuses these
/// into integer kernels (QLinearConv, QGemm, ...) with exact int32 accumulation; it requantizes in float with
/// round-half-to-even where we use gemmlowp's fixed-point multiplier, so a code can differ by one step at near-ties.
/// </para>
/// <para>
/// With int32-accumulator logits (our default) the last linear layer is integer arithmetic throughout, so that it is
/// exact: MatMulInteger(codes, int8 weights [in, out], zero points) -> Add(int32 bias) -> Cast(float) ->
/// Mul(input_scale x weight_scale[c]), the product written as a Mul of the two constants that computes exactly the
/// float product our layer uses (a network that ends in a convolution is exported with dequantized-output logits only).
/// With dequantized-output logits the last layer is a hidden layer followed by DequantizeLinear. The input is quantized by QuantizeLinear, which rounds half to even where ours rounds half away
/// from zero: the two differ only on exact ties.
/// </para>
/// </summary>
public static class OnnxExporter
{
    /// <summary>The name of the graph input.</summary>
    public const string InputName = "input";

    /// <summary>The name of the graph output.</summary>
    public const string OutputName = "logits";

    /// <summary>The opset the exporter writes.</summary>
    public const int Opset = 13;

    /// <summary>The <c>format</c> metadata of a float export (the safetensors float format's name).</summary>
    public const string FloatFormat = ModelFile.FloatFormat;

    /// <summary>The <c>format</c> metadata of an int8 export (the safetensors int8 format's name).</summary>
    public const string Int8Format = QuantizedModelFile.Int8Format;

    /// <summary>
    /// The ONNX bytes of a float network for per-sample inputs of <paramref name="inputShape"/> (C, H, W), with the input
    /// normalisation it was trained with.
    /// </summary>
    public static byte[] Export(Sequential network, int[] inputShape, float inputMean, float inputStd)
    {
        ArgumentNullException.ThrowIfNull(network);
        int[] outputShape = network.OutputShape([1, .. inputShape]);
        var g = new OnnxGraphBuilder();
        string x = InputName;
        for (int i = 0; i < network.Layers.Count; i++)
        {
            (string name, Layer layer) = network.Layers[i];
            string y = i == network.Layers.Count - 1 ? OutputName : name;
            switch (layer)
            {
                case Conv2d conv:
                    g.Node("Conv", name,
                        [x, g.Floats($"{name}.weight", conv.Weight.Value.Shape.ToArray(), conv.Weight.Value.Data),
                            g.Floats($"{name}.bias", [conv.OutChannels], conv.Bias.Value.Data)],
                        [y], ConvAttributes(conv.KernelSize, conv.Stride, conv.Padding));
                    break;
                case Linear linear:
                    g.Node("Gemm", name,
                        [x, g.Floats($"{name}.weight", linear.Weight.Value.Shape.ToArray(), linear.Weight.Value.Data),
                            g.Floats($"{name}.bias", [linear.OutFeatures], linear.Bias.Value.Data)],
                        [y], OnnxAttribute.Int("transB", 1));
                    break;
                case ReLU:
                    g.Node("Relu", name, [x], [y]);
                    break;
                case AvgPool2d pool:
                    g.Node("AveragePool", name, [x], [y], PoolAttributes(pool.KernelSize, pool.Stride));
                    break;
                case Flatten:
                    g.Node("Flatten", name, [x], [y], OnnxAttribute.Int("axis", 1));
                    break;
                default:
                    throw new NotSupportedException($"layer '{name}' ({layer}) has no ONNX form here.");
            }
            x = y;
        }
        Declare(g, inputShape, outputShape[1..]);
        Describe(g, FloatFormat, inputShape, inputMean, inputStd);
        return g.Build(opset: Opset);
    }

    /// <summary>The ONNX bytes of an int8 network, in the QDQ form described on the class.</summary>
    public static byte[] Export(QuantizedNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var g = new OnnxGraphBuilder();
        var codes = new Activation(g, "input", network.Input);
        g.Node("QuantizeLinear", "input_quantize", [InputName, codes.Scale, codes.ZeroPoint], [codes.Codes]);
        bool int32Logits = network.Logits == LogitsMode.Int32Accumulator;
        for (int i = 0; i < network.Layers.Count; i++)
        {
            QuantizedLayer layer = network.Layers[i];
            string name = layer.Name;
            if (layer.Input.Scale != codes.Parameters.Scale || layer.Input.ZeroPoint != codes.Parameters.ZeroPoint)
            {
                throw new NotSupportedException($"layer '{name}' reads scale {layer.Input.Scale} / zero point {layer.Input.ZeroPoint}, but its input has {codes.Parameters}.");
            }
            bool last = i == network.Layers.Count - 1;
            switch (layer)
            {
                case QuantizedWeightedLayer w when last && int32Logits:
                    Int32Tail(g, w, codes);
                    codes = null!;
                    break;
                case QuantizedWeightedLayer w:
                {
                    string real = codes.Real();
                    int[] shape = w.WeightShape.ToArray();
                    string weight = Dequantized(g, $"{name}.weight", g.Int8s($"{name}.weight", shape, w.Weights),
                        g.Floats($"{name}.weight_scale", ScaleDims(w), w.WeightScales),
                        g.Int8s($"{name}.weight_zero_point", ScaleDims(w), [.. w.WeightZeroPoints.ToArray().Select(z => (sbyte)z)]));
                    float[] biasScales = [.. w.WeightScales.ToArray().Select(s => w.Input.Scale * s)];
                    string bias = Dequantized(g, $"{name}.bias", g.Int32s($"{name}.bias", [w.OutFeatures], w.Bias),
                        g.Floats($"{name}.bias_scale", ScaleDims(w), biasScales), null);
                    string y = $"{name}.real";
                    if (w is QuantizedConv2d conv)
                    {
                        g.Node("Conv", name, [real, weight, bias], [y], ConvAttributes(conv.KernelSize, conv.Stride, conv.Padding));
                    }
                    else
                    {
                        g.Node("Gemm", name, [real, weight, bias], [y], OnnxAttribute.Int("transB", 1));
                    }
                    if (w.FusedRelu)
                    {
                        g.Node("Relu", $"{name}_relu", [y], [$"{name}.relu"]);
                        y = $"{name}.relu";
                    }
                    codes = new Activation(g, name, w.Output);
                    g.Node("QuantizeLinear", $"{name}_quantize", [y, codes.Scale, codes.ZeroPoint], [codes.Codes]);
                    break;
                }
                case QuantizedAvgPool2d pool:
                {
                    // Our pooling rounds a mean that ends in exactly .5 up; QuantizeLinear would round it to even. A quarter
                    // of the mean's resolution (1 / window codes) added first decides those ties upward and moves no other
                    // mean across a rounding boundary (they are at least a whole 1 / window away from one).
                    float nudge = codes.Parameters.Scale / (4f * pool.KernelSize * pool.KernelSize);
                    g.Node("AveragePool", name, [codes.Real()], [$"{name}.real"], PoolAttributes(pool.KernelSize, pool.Stride));
                    g.Node("Add", $"{name}_round_half_up", [$"{name}.real", g.Floats($"{name}.tie_nudge", [], [nudge])], [$"{name}.nudged"]);
                    codes = codes.Renamed(name);
                    g.Node("QuantizeLinear", $"{name}_quantize", [$"{name}.nudged", codes.Scale, codes.ZeroPoint], [codes.Codes]);
                    break;
                }
                case QuantizedReLU:
                    g.Node("Relu", name, [codes.Real()], [$"{name}.real"]);
                    codes = codes.Renamed(name);
                    g.Node("QuantizeLinear", $"{name}_quantize", [$"{name}.real", codes.Scale, codes.ZeroPoint], [codes.Codes]);
                    break;
                case QuantizedFlatten:
                {
                    string input = codes.Codes;
                    codes = codes.Renamed(name);
                    g.Node("Flatten", name, [input], [codes.Codes], OnnxAttribute.Int("axis", 1));
                    break;
                }
                default:
                    throw new NotSupportedException($"layer '{name}' ({layer}) has no ONNX form here.");
            }
        }
        if (!int32Logits)
        {
            g.Node("DequantizeLinear", "logits_dequantize", [codes.Codes, codes.Scale, codes.ZeroPoint], [OutputName]);
        }
        Declare(g, network.InputShape, network.OutputShape);
        Describe(g, Int8Format, network.InputShape, network.InputMean, network.InputStd);
        g.Metadata("logits", int32Logits ? "int32_accumulator" : "dequantized_output");
        return g.Build(opset: Opset);
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> through a temporary file, so a failed write leaves any previous file intact.</summary>
    public static void Save(byte[] model, string path)
    {
        string full = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temporary, model);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    // The last linear layer, exact: sum (x - zx)(w - zw) + bias in int32, then one float product per class.
    private static void Int32Tail(OnnxGraphBuilder g, QuantizedWeightedLayer w, Activation codes)
    {
        string name = w.Name;
        if (w is not QuantizedLinear)
        {
            throw new NotSupportedException(
                $"layer '{name}': int32-accumulator logits are exported for a linear last layer only; quantize with dequantized-output logits to export a network ending in {w}.");
        }
        int o = w.OutFeatures, d = w.Depth;
        sbyte[] transposed = new sbyte[w.Weights.Length];
        for (int r = 0; r < o; r++)
        {
            for (int c = 0; c < d; c++)
            {
                transposed[c * o + r] = w.Weights[r * d + c];
            }
        }
        bool oneZeroPoint = !w.WeightZeroPoints.ContainsAnyExcept(w.WeightZeroPoints[0]);
        sbyte[] zeroPoints = oneZeroPoint ? [(sbyte)w.WeightZeroPoints[0]] : [.. Enumerable.Range(0, o).Select(c => (sbyte)w.WeightZeroPoint(c))];
        g.Node("MatMulInteger", name,
            [codes.Codes, g.Int8s($"{name}.weight_t", [d, o], transposed), codes.ZeroPoint,
                g.Int8s($"{name}.weight_zero_point", oneZeroPoint ? [] : [o], zeroPoints)],
            [$"{name}.accumulator"]);
        g.Node("Add", $"{name}_bias", [$"{name}.accumulator", g.Int32s($"{name}.bias", [o], w.Bias)], [$"{name}.biased"]);
        g.Node("Cast", $"{name}_cast", [$"{name}.biased"], [$"{name}.float"], OnnxAttribute.Int("to", (int)OnnxDataType.Float));
        g.Node("Mul", $"{name}_logit_scale", [g.Floats($"{name}.input_scale", [], [w.Input.Scale]), g.Floats($"{name}.weight_scale", ScaleDims(w), w.WeightScales)],
            [$"{name}.logit_scale"]);
        g.Node("Mul", $"{name}_rescale", [$"{name}.float", $"{name}.logit_scale"], [OutputName]);
    }

    private static int[] ScaleDims(QuantizedWeightedLayer w) => w.WeightScales.Length == 1 ? [] : [w.WeightScales.Length];

    private static string Dequantized(OnnxGraphBuilder g, string name, string codes, string scale, string? zeroPoint)
    {
        string real = $"{name}.real";
        g.Node("DequantizeLinear", $"{name.Replace('.', '_')}_dequantize", zeroPoint is null ? [codes, scale] : [codes, scale, zeroPoint], [real],
            OnnxAttribute.Int("axis", 0));
        return real;
    }

    private static OnnxAttribute[] ConvAttributes(int kernel, int stride, int padding) =>
    [
        OnnxAttribute.Ints("kernel_shape", kernel, kernel), OnnxAttribute.Ints("strides", stride, stride),
        OnnxAttribute.Ints("pads", padding, padding, padding, padding), OnnxAttribute.Ints("dilations", 1, 1), OnnxAttribute.Int("group", 1),
    ];

    private static OnnxAttribute[] PoolAttributes(int kernel, int stride) =>
        [OnnxAttribute.Ints("kernel_shape", kernel, kernel), OnnxAttribute.Ints("strides", stride, stride)];

    private static void Declare(OnnxGraphBuilder g, int[] inputShape, int[] outputShape)
    {
        g.Input(InputName, OnnxDataType.Float, ["N", .. inputShape.Select(d => (object)d)]);
        g.Output(OutputName, OnnxDataType.Float, ["N", .. outputShape.Select(d => (object)d)]);
    }

    private static void Describe(OnnxGraphBuilder g, string format, int[] inputShape, float mean, float std) =>
        g.Metadata("format", format)
            .Metadata("input_mean", mean.ToString("R", CultureInfo.InvariantCulture))
            .Metadata("input_std", std.ToString("R", CultureInfo.InvariantCulture))
            .Metadata("input_shape", string.Join(",", inputShape));

    // A uint8 activation: its codes' value name, and the scale and zero point initializers that describe it. The real
    // (dequantized) value is written once, when a float operator first needs it.
    private sealed class Activation(OnnxGraphBuilder g, string name, QuantParams parameters, string? scale = null, string? zeroPoint = null)
    {
        private string? _real;

        public QuantParams Parameters { get; } = parameters;

        public string Codes { get; } = name == "input" ? "input.codes" : name;

        public string Scale { get; } = scale ?? g.Floats($"{name}.scale", [], [parameters.Scale]);

        public string ZeroPoint { get; } = zeroPoint ?? g.UInt8s($"{name}.zero_point", [], [(byte)parameters.ZeroPoint]);

        public string Real()
        {
            if (_real is null)
            {
                _real = $"{Codes}.dequantized";
                g.Node("DequantizeLinear", $"{Codes.Replace('.', '_')}_dequantize", [Codes, Scale, ZeroPoint], [_real]);
            }
            return _real;
        }

        // The same scale and zero point, carried by a layer that keeps them (pooling, flatten, ReLU).
        public Activation Renamed(string layer) => new(g, layer, Parameters, Scale, ZeroPoint);
    }
}
