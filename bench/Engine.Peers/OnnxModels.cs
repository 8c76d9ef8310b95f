using System.Runtime.InteropServices;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Peers;

/// <summary>
/// Writes our networks as ONNX models (onnx/onnx.proto, opset 17) with the same weights, so that ONNX Runtime runs
/// exactly our network: the float one as Conv/Relu/AveragePool/Flatten/Gemm, the int8 one as QuantizeLinear,
/// QLinearConv (linear layers as 1x1 QLinearConv, which, unlike QLinearMatMul, takes per-channel weight scales and an
/// int32 bias) and DequantizeLinear, with our scales, zero points and codes. A fused ReLU needs no node: its output
/// zero point is 0, so the uint8 clamp is the ReLU.
/// </summary>
internal static class OnnxModels
{
    private const int Float32 = 1, UInt8 = 2, Int8 = 3, Int32 = 6, Int64 = 7;

    public static byte[] Float(Sequential network, int[] sampleShape)
    {
        var g = new Graph();
        string x = "x";
        foreach ((string name, Layer layer) in network.Layers)
        {
            string y = name;
            switch (layer)
            {
                case Conv2d conv:
                    g.Node("Conv", [x, g.Floats($"{name}.weight", conv.Weight.Value.Shape.ToArray(), conv.Weight.Value.Data),
                        g.Floats($"{name}.bias", [conv.OutChannels], conv.Bias.Value.Data)], [y],
                        Ints("kernel_shape", conv.KernelSize, conv.KernelSize), Ints("strides", conv.Stride, conv.Stride),
                        Ints("pads", conv.Padding, conv.Padding, conv.Padding, conv.Padding));
                    break;
                case Linear linear:
                    g.Node("Gemm", [x, g.Floats($"{name}.weight", linear.Weight.Value.Shape.ToArray(), linear.Weight.Value.Data),
                        g.Floats($"{name}.bias", [linear.OutFeatures], linear.Bias.Value.Data)], [y], Int("transB", 1));
                    break;
                case ReLU:
                    g.Node("Relu", [x], [y]);
                    break;
                case AvgPool2d pool:
                    g.Node("AveragePool", [x], [y], Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride));
                    break;
                case Flatten:
                    g.Node("Flatten", [x], [y], Int("axis", 1));
                    break;
                default:
                    throw new NotSupportedException($"layer {name} ({layer}) has no ONNX form here.");
            }
            x = y;
        }
        g.Node("Identity", [x], ["logits"]);
        return g.Build("x", Float32, ["N", .. sampleShape.Select(d => (object)d)], "logits", Float32);
    }

    public static byte[] Int8Model(QuantizedNetwork network)
    {
        if (network.Logits != LogitsMode.DequantizedOutput)
        {
            throw new ArgumentException("compare with a network whose logits are dequantized outputs (ONNX's QLinear ops requantize every layer).");
        }
        var g = new Graph();
        g.Node("QuantizeLinear", ["x", g.Scalar("input.scale", network.Input.Scale), g.Code("input.zero_point", network.Input.ZeroPoint)], ["xq"]);
        string x = "xq";
        bool flat = false;
        foreach (QuantizedLayer layer in network.Layers)
        {
            string name = layer.Name, y = name;
            switch (layer)
            {
                case QuantizedWeightedLayer w:
                {
                    if (w.FusedRelu && w.Output.ZeroPoint != 0)
                    {
                        throw new NotSupportedException($"{name}: a fused ReLU with output zero point {w.Output.ZeroPoint} needs a clamp node.");
                    }
                    if (w.WeightScales.Length == 1 && w.OutFeatures > 1 && w.WeightZeroPoints[0] != 0)
                    {
                        // QLinearConv's per-tensor weight zero point is fine; it is only spelled as one value.
                    }
                    int[] shape = w is QuantizedConv2d ? w.WeightShape.ToArray() : [w.OutFeatures, w.Depth, 1, 1];
                    if (w is QuantizedLinear && !flat)
                    {
                        g.Node("Reshape", [x, g.Longs($"{name}.as_image", [4], [-1, w.Depth, 1, 1])], [$"{name}.in"]);
                        x = $"{name}.in";
                        flat = true;
                    }
                    int k = w is QuantizedConv2d c ? c.KernelSize : 1, stride = w is QuantizedConv2d c2 ? c2.Stride : 1, pad = w is QuantizedConv2d c3 ? c3.Padding : 0;
                    g.Node("QLinearConv",
                    [
                        x, g.Scalar($"{name}.input_scale", w.Input.Scale), g.Code($"{name}.input_zero_point", w.Input.ZeroPoint),
                        g.Int8s($"{name}.weight", shape, w.Weights.ToArray()), g.Floats($"{name}.weight_scale", [w.WeightScales.Length], w.WeightScales),
                        g.Int8s($"{name}.weight_zero_point", [w.WeightZeroPoints.Length], w.WeightZeroPoints.ToArray().Select(z => (sbyte)z).ToArray()),
                        g.Scalar($"{name}.output_scale", w.Output.Scale), g.Code($"{name}.output_zero_point", w.Output.ZeroPoint),
                        g.Int32s($"{name}.bias", [w.OutFeatures], w.Bias.ToArray()),
                    ], [y], Ints("kernel_shape", k, k), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad));
                    break;
                }
                case QuantizedAvgPool2d pool:
                    // DequantizeLinear -> AveragePool -> QuantizeLinear: ONNX Runtime fuses this into its uint8 pooling.
                    g.Node("DequantizeLinear", [x, g.Scalar($"{name}.scale", pool.Input.Scale), g.Code($"{name}.zero_point", pool.Input.ZeroPoint)], [$"{name}.real"]);
                    g.Node("AveragePool", [$"{name}.real"], [$"{name}.pooled"], Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride));
                    g.Node("QuantizeLinear", [$"{name}.pooled", $"{name}.scale", $"{name}.zero_point"], [y]);
                    break;
                case QuantizedFlatten:
                    continue;   // the next linear layer reshapes to [N, features, 1, 1]
                default:
                    throw new NotSupportedException($"layer {name} ({layer}) has no ONNX form here.");
            }
            x = y;
        }
        QuantParams last = network.Layers[^1].Output;
        g.Node("DequantizeLinear", [x, g.Scalar("logits.scale", last.Scale), g.Code("logits.zero_point", last.ZeroPoint)], ["logits.image"]);
        g.Node("Flatten", ["logits.image"], ["logits"], Int("axis", 1));
        return g.Build("x", Float32, ["N", .. network.InputShape.Select(d => (object)d)], "logits", Float32);
    }

    private static Attribute Int(string name, long value) => new(name, 2, [value]);

    private static Attribute Ints(string name, params long[] values) => new(name, 7, values);

    private sealed record Attribute(string Name, int Type, long[] Values);

    private sealed class Graph
    {
        private readonly List<Action<ProtoWriter>> _nodes = [];
        private readonly List<Action<ProtoWriter>> _initializers = [];
        private readonly HashSet<string> _names = [];

        public void Node(string op, string[] inputs, string[] outputs, params Attribute[] attributes) =>
            _nodes.Add(n =>
            {
                foreach (string i in inputs) n.String(1, i);
                foreach (string o in outputs) n.String(2, o);
                n.String(3, $"{op}_{outputs[0]}").String(4, op);
                foreach (Attribute a in attributes)
                {
                    n.Message(5, at =>
                    {
                        at.String(1, a.Name).Int(20, a.Type);
                        if (a.Type == 2) at.Int(3, a.Values[0]);
                        else at.PackedInts(8, a.Values);
                    });
                }
            });

        public string Floats(string name, int[] dims, ReadOnlySpan<float> values) => FloatTensor(name, Float32, dims, MemoryMarshal.AsBytes(values).ToArray());

        public string Scalar(string name, float value) => FloatTensor(name, Float32, [], BitConverter.GetBytes(value));

        public string Code(string name, int zeroPoint) => FloatTensor(name, UInt8, [], [(byte)zeroPoint]);

        public string Int8s(string name, int[] dims, sbyte[] values) => FloatTensor(name, Int8, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

        public string Int32s(string name, int[] dims, int[] values) => FloatTensor(name, Int32, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

        public string Longs(string name, int[] dims, long[] values) => FloatTensor(name, Int64, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

        private string FloatTensor(string name, int type, int[] dims, byte[] raw)
        {
            if (_names.Add(name))
            {
                _initializers.Add(t =>
                {
                    if (dims.Length > 0) t.PackedInts(1, dims.Select(d => (long)d));
                    t.Int(2, type).String(8, name).Bytes(9, raw);
                });
            }
            return name;
        }

        public byte[] Build(string input, int inputType, object[] inputDims, string output, int outputType) =>
            new ProtoWriter()
                .Int(1, 8)                                                   // ir_version 8
                .String(2, "Engine.Peers")
                .Message(8, o => o.String(1, "").Int(2, 17))                 // opset_import: ai.onnx 17
                .Message(7, graph =>
                {
                    foreach (var node in _nodes) graph.Message(1, node);
                    graph.String(2, "engine");
                    foreach (var init in _initializers) graph.Message(5, init);
                    graph.Message(11, v => ValueInfo(v, input, inputType, inputDims));
                    graph.Message(12, v => ValueInfo(v, output, outputType, ["N", "classes"]));
                })
                .ToArray();

        private static void ValueInfo(ProtoWriter v, string name, int type, object[] dims) =>
            v.String(1, name).Message(2, t => t.Message(1, tensor =>
            {
                tensor.Int(1, type);
                tensor.Message(2, shape =>
                {
                    foreach (object d in dims)
                    {
                        shape.Message(1, dim => { if (d is int n) dim.Int(1, n); else dim.String(2, (string)d); });
                    }
                });
            }));
    }
}
