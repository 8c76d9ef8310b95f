using Engine.Kernels;
using Engine.Layers;
using Engine.Onnx;
using Engine.Onnx.Protobuf;
using Engine.Quantization;
using Engine.Tensors;

namespace Engine.Tests.Onnx;

/// <summary>
/// Graphs in the shapes other writers produce (torch.onnx.export, ONNX Runtime's quantize_static), built here with the
/// protobuf writer: they must import and compute what the equivalent network of our own layers computes.
/// </summary>
public sealed class OnnxForeignGraphTests
{
    private static float[] Values(Parameter p) => p.Value.Data.ToArray();

    private static float[] Transposed(Linear fc)
    {
        float[] w = Values(fc.Weight), t = new float[w.Length];
        for (int o = 0; o < fc.OutFeatures; o++)
        {
            for (int i = 0; i < fc.InFeatures; i++)
            {
                t[i * fc.OutFeatures + o] = w[o * fc.InFeatures + i];
            }
        }
        return t;
    }

    [Fact]
    public void A_torch_export_with_pads_gemm_transB_flatten_and_typed_initializers_matches_the_network()
    {
        Sequential network = OnnxTestNetworks.Seed(seed: 21);
        var conv1 = (Conv2d)network["conv1"];
        var conv2 = (Conv2d)network["conv2"];
        var fc1 = (Linear)network["fc1"];
        var fc2 = (Linear)network["fc2"];
        var g = new OnnxGraphBuilder();
        // torch names values /conv1/Conv_output_0 and nodes /conv1/Conv; weights are initializers named after the parameters.
        g.Node("Conv", "/conv1/Conv", ["input", g.Floats("conv1.weight", [8, 1, 3, 3], Values(conv1.Weight), typed: true), g.Floats("conv1.bias", [8], Values(conv1.Bias), typed: true)],
                ["/conv1/Conv_output_0"], OnnxAttribute.Ints("dilations", 1, 1), OnnxAttribute.Int("group", 1), OnnxAttribute.Ints("kernel_shape", 3, 3),
                OnnxAttribute.Ints("pads", 1, 1, 1, 1), OnnxAttribute.Ints("strides", 1, 1))
            .Node("Relu", "/Relu", ["/conv1/Conv_output_0"], ["/Relu_output_0"])
            .Node("Conv", "/conv2/Conv", ["/Relu_output_0", g.Floats("conv2.weight", [16, 8, 3, 3], Values(conv2.Weight)), g.Floats("conv2.bias", [16], Values(conv2.Bias))],
                ["/conv2/Conv_output_0"], OnnxAttribute.Ints("kernel_shape", 3, 3), OnnxAttribute.Ints("pads", 1, 1, 1, 1))
            .Node("Relu", "/Relu_1", ["/conv2/Conv_output_0"], ["/Relu_1_output_0"])
            .Node("AveragePool", "/AveragePool", ["/Relu_1_output_0"], ["/AveragePool_output_0"], OnnxAttribute.Int("ceil_mode", 0),
                OnnxAttribute.Int("count_include_pad", 1), OnnxAttribute.Ints("kernel_shape", 4, 4), OnnxAttribute.Ints("pads", 0, 0, 0, 0), OnnxAttribute.Ints("strides", 4, 4))
            .Node("Flatten", "/Flatten", ["/AveragePool_output_0"], ["/Flatten_output_0"], OnnxAttribute.Int("axis", 1))
            .Node("Gemm", "/fc1/Gemm", ["/Flatten_output_0", g.Floats("fc1.weight", [32, 1024], Values(fc1.Weight), typed: true), g.Floats("fc1.bias", [32], Values(fc1.Bias))],
                ["/fc1/Gemm_output_0"], OnnxAttribute.Float("alpha", 1f), OnnxAttribute.Float("beta", 1f), OnnxAttribute.Int("transB", 1))
            .Node("Relu", "/Relu_2", ["/fc1/Gemm_output_0"], ["/Relu_2_output_0"])
            .Node("Gemm", "/fc2/Gemm", ["/Relu_2_output_0", g.Floats("fc2.weight", [10, 32], Values(fc2.Weight)), g.Floats("fc2.bias", [10], Values(fc2.Bias))],
                ["output"], OnnxAttribute.Int("transB", 1))
            .Input("input", OnnxDataType.Float, "batch_size", 1, 32, 32)
            .Output("output", OnnxDataType.Float, "batch_size", 10);
        OnnxImport imported = OnnxModel.Load(g.Build("main_graph", opset: 17, producer: "pytorch"), "torch.onnx");

        Assert.Equal([1, 32, 32], imported.InputShape);
        Assert.Equal(0f, imported.InputMean);
        Assert.Equal(1f, imported.InputStd);
        Assert.Equal(["conv1", "relu1", "conv2", "relu2", "pool1", "flatten1", "fc1", "relu3", "fc2"], imported.Float!.Layers.Select(l => l.Name));
        FloatTensor x = OnnxTestNetworks.Inputs(3, [1, 32, 32]);
        Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(imported.Float, x));
    }

    [Fact]
    public void MatMul_plus_Add_Reshape_from_a_Constant_auto_pad_and_shuffled_nodes_import_as_the_same_network()
    {
        Sequential network = OnnxTestNetworks.Odd(seed: 8);
        var conv1 = (Conv2d)network["conv1"];
        var conv2 = (Conv2d)network["conv2"];
        var fc1 = (Linear)network["fc1"];
        var fc2 = (Linear)network["fc2"];
        var g = new OnnxGraphBuilder();
        // Listed out of order on purpose: the reader must order nodes from value names.
        g.Node("Add", "fc2_add", ["h2", g.Floats("fc2.bias", [5], Values(fc2.Bias))], ["y"])
            .Node("MatMul", "fc2_matmul", ["h1r", g.Floats("fc2.weight_t", [12, 5], Transposed(fc2))], ["h2"])
            .Node("Relu", "r3", ["h1b"], ["h1r"])
            .Node("Add", "fc1_add", [g.Floats("fc1.bias", [1, 12], Values(fc1.Bias), typed: true), "h1"], ["h1b"])   // bias first
            .Node("MatMul", "fc1_matmul", ["flat", g.Floats("fc1.weight_t", [196, 12], Transposed(fc1))], ["h1"])
            .Node("Reshape", "flatten", ["a2", "shape"], ["flat"])
            .Node("Constant", "shape_constant", [], ["shape"], OnnxAttribute.Int64Tensor("value", [2], -1, 196))
            .Node("Relu", "r2", ["c2"], ["a2"])
            .Node("Conv", "c2_conv", ["a1", g.Floats("w2", [4, 6, 3, 3], Values(conv2.Weight)), g.Floats("b2", [4], Values(conv2.Bias), typed: true)],
                ["c2"], OnnxAttribute.String("auto_pad", "SAME_UPPER"))
            .Node("Identity", "id", ["r1"], ["a1"])
            .Node("Relu", "r1_relu", ["c1"], ["r1"])
            .Node("Conv", "c1_conv", ["x", g.Floats("w1", [6, 3, 5, 5], Values(conv1.Weight)), g.Floats("b1", [6], Values(conv1.Bias))],
                ["c1"], OnnxAttribute.Ints("strides", 2, 2), OnnxAttribute.String("auto_pad", "VALID"))
            .Input("x", OnnxDataType.Float, "N", 3, 17, 17)
            .Input("w1", OnnxDataType.Float, 6, 3, 5, 5)        // initializers may also be listed as inputs (IR < 4 style)
            .Output("y", OnnxDataType.Float, "N", 5);
        OnnxImport imported = OnnxModel.Load(g.Build(), "matmul.onnx");

        Sequential back = imported.Float!;
        Assert.Equal(network.Layers.Select(l => l.Layer.ToString()), back.Layers.Select(l => l.Layer.ToString()));
        FloatTensor x = OnnxTestNetworks.Inputs(4, [3, 17, 17]);
        Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(back, x));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(2L)]
    public void Reshape_to_two_dimensions_accepts_a_batch_of_0_minus_1_or_a_number(long batch)
    {
        Sequential network = OnnxTestNetworks.Tiny();
        var conv = (Conv2d)network["conv1"];
        var fc = (Linear)network["fc1"];
        var g = new OnnxGraphBuilder();
        g.Node("Conv", "conv", ["x", g.Floats("w", [2, 1, 3, 3], Values(conv.Weight)), g.Floats("b", [2], Values(conv.Bias))], ["c"], OnnxAttribute.Ints("pads", 1, 1, 1, 1))
            .Node("Relu", "relu", ["c"], ["r"])
            .Node("AveragePool", "pool", ["r"], ["p"], OnnxAttribute.Ints("kernel_shape", 2, 2), OnnxAttribute.Ints("strides", 2, 2))
            .Node("Reshape", "reshape", ["p", g.Int64s("shape", [2], [batch, batch == -1 ? 18 : -1], typed: true)], ["f"])
            .Node("Gemm", "fc", ["f", g.Floats("fw", [18, 3], Transposed(fc)), g.Floats("fb", [3], Values(fc.Bias))], ["y"])   // transB = 0
            .Input("x", OnnxDataType.Float, 2, 1, 6, 6)
            .Output("y", OnnxDataType.Float, 2, 3);
        Sequential back = OnnxModel.Load(g.Build(), "reshape.onnx").Float!;
        FloatTensor x = OnnxTestNetworks.Inputs(2, OnnxTestNetworks.TinyInput);
        Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(back, x));
    }

    /// <summary>
    /// The QDQ graph ONNX Runtime's quantize_static writes for conv -> relu -> pool -> flatten -> fc: the ReLU removed
    /// (the conv's output zero point 0 clamps), per-channel int8 weights on axis 0, int32 biases with scale x_scale x
    /// w_scale, pooling keeping its input's parameters, and the output quantized and dequantized again.
    /// </summary>
    [Fact]
    public void A_quantize_static_style_qdq_graph_imports_as_the_integer_network_it_describes()
    {
        var input = new QuantParams(0.0157f, 128, 0, 255);
        var convOut = new QuantParams(0.0211f, 0, 0, 255);
        var fcOut = new QuantParams(0.0733f, 117, 0, 255);
        sbyte[] convWeights = [.. TestData.Uniform(18, 31).Select(v => (sbyte)MathF.Round(v * 127))];
        float[] convScales = [0.0041f, 0.0037f];
        int[] convBias = [312, -95];
        sbyte[] fcWeights = [.. TestData.Uniform(54, 32).Select(v => (sbyte)MathF.Round(v * 127))];
        float fcScale = 0.0029f;
        int[] fcBias = [-40, 77, 5];
        var expected = new QuantizedNetwork(
        [
            new QuantizedConv2d("conv", input, convOut, convWeights, [2, 1, 3, 3], convScales, [0, 0], convBias, fusedRelu: false, stride: 1, padding: 1),
            new QuantizedAvgPool2d("pool", convOut, 2, 2),
            new QuantizedFlatten("flatten", convOut),
            new QuantizedLinear("fc", convOut, fcOut, fcWeights, [3, 18], [fcScale], [0], fcBias, fusedRelu: false),
        ], input, [1, 6, 6], 0f, 1f, LogitsMode.DequantizedOutput);

        var g = new OnnxGraphBuilder();
        string Scale(string name, float s) => g.Floats(name, [], [s]);
        string Zero(string name, int z) => g.UInt8s(name, [], [(byte)z]);
        g.Node("QuantizeLinear", "input_QuantizeLinear", ["input", Scale("input_scale", input.Scale), Zero("input_zero_point", input.ZeroPoint)], ["input_quantized"])
            .Node("DequantizeLinear", "input_DequantizeLinear", ["input_quantized", "input_scale", "input_zero_point"], ["input_dequantized"])
            .Node("DequantizeLinear", "conv.weight_DequantizeLinear",
                [g.Int8s("conv.weight_quantized", [2, 1, 3, 3], convWeights), g.Floats("conv.weight_scale", [2], convScales), g.Int8s("conv.weight_zero_point", [2], [0, 0])],
                ["conv.weight_dequantized"], OnnxAttribute.Int("axis", 0))
            .Node("DequantizeLinear", "conv.bias_DequantizeLinear",
                [g.Int32s("conv.bias_quantized", [2], convBias, typed: true), g.Floats("conv.bias_scale", [2], [.. convScales.Select(s => input.Scale * s)]), g.Int32s("conv.bias_zero_point", [2], [0, 0])],
                ["conv.bias_dequantized"], OnnxAttribute.Int("axis", 0))
            .Node("Conv", "/conv/Conv", ["input_dequantized", "conv.weight_dequantized", "conv.bias_dequantized"], ["/conv/Conv_output_0"], OnnxAttribute.Ints("pads", 1, 1, 1, 1))
            .Node("QuantizeLinear", "/relu/Relu_output_0_QuantizeLinear", ["/conv/Conv_output_0", Scale("relu_scale", convOut.Scale), Zero("relu_zero_point", 0)], ["r_q"])
            .Node("DequantizeLinear", "/relu/Relu_output_0_DequantizeLinear", ["r_q", "relu_scale", "relu_zero_point"], ["r_dq"])
            .Node("AveragePool", "/pool/AveragePool", ["r_dq"], ["p"], OnnxAttribute.Ints("kernel_shape", 2, 2), OnnxAttribute.Ints("strides", 2, 2))
            .Node("QuantizeLinear", "p_QuantizeLinear", ["p", "relu_scale", "relu_zero_point"], ["p_q"])
            .Node("DequantizeLinear", "p_DequantizeLinear", ["p_q", "relu_scale", "relu_zero_point"], ["p_dq"])
            .Node("Flatten", "/flatten/Flatten", ["p_dq"], ["f"])
            .Node("QuantizeLinear", "f_QuantizeLinear", ["f", "relu_scale", "relu_zero_point"], ["f_q"])
            .Node("DequantizeLinear", "f_DequantizeLinear", ["f_q", "relu_scale", "relu_zero_point"], ["f_dq"])
            .Node("DequantizeLinear", "fc.weight_DequantizeLinear", [g.Int8s("fc.weight_quantized", [3, 18], fcWeights, typed: true), Scale("fc.weight_scale", fcScale), g.Int8s("fc.weight_zero_point", [], [0])],
                ["fc.weight_dequantized"])
            .Node("DequantizeLinear", "fc.bias_DequantizeLinear", [g.Int32s("fc.bias_quantized", [3], fcBias), Scale("fc.bias_scale", convOut.Scale * fcScale)], ["fc.bias_dequantized"])
            .Node("Gemm", "/fc/Gemm", ["f_dq", "fc.weight_dequantized", "fc.bias_dequantized"], ["g"], OnnxAttribute.Int("transB", 1))
            .Node("QuantizeLinear", "output_QuantizeLinear", ["g", Scale("output_scale", fcOut.Scale), Zero("output_zero_point", fcOut.ZeroPoint)], ["o_q"])
            .Node("DequantizeLinear", "output_DequantizeLinear", ["o_q", "output_scale", "output_zero_point"], ["output"])
            .Input("input", OnnxDataType.Float, "N", 1, 6, 6)
            .Output("output", OnnxDataType.Float, "N", 3);
        QuantizedNetwork back = OnnxModel.Load(g.Build(producer: "onnx.quantize"), "qdq.onnx").Int8!;

        Assert.Equal(LogitsMode.DequantizedOutput, back.Logits);
        Assert.Equal(expected.Layers.Select(l => l.ToString()), back.Layers.Select(l => l.ToString()));
        FloatTensor x = OnnxTestNetworks.Inputs(6, [1, 6, 6]);
        Assert.Equal(OnnxTestNetworks.Logits(expected, x), OnnxTestNetworks.Logits(back, x));
    }

    /// <summary>
    /// A QDQ linear layer over MatMul with weights [in, out] quantized per output column (axis 1), a float bias, and a
    /// float graph output: the int32-accumulator logits, sx sw[c] (acc + bias).
    /// </summary>
    [Fact]
    public void A_qdq_matmul_with_column_scales_and_a_float_output_imports_with_int32_accumulator_logits()
    {
        var input = new QuantParams(0.02f, 10, 0, 255);
        sbyte[] weights = [.. TestData.Uniform(24, 41).Select(v => (sbyte)MathF.Round(v * 127))];   // [out 3, in 8]
        float[] scales = [0.011f, 0.007f, 0.013f];
        float[] realBias = [0.5f, -0.25f, 0.125f];
        int[] biasCodes = [.. realBias.Select((b, c) => (int)Math.Round(b / ((double)input.Scale * scales[c]), MidpointRounding.AwayFromZero))];
        var expected = new QuantizedNetwork(
            [new QuantizedLinear("fc", input, new QuantParams(1f, 0, 0, 255), weights, [3, 8], scales, [0, 0, 0], biasCodes, fusedRelu: false)],
            input, [8], 0f, 1f, LogitsMode.Int32Accumulator);

        sbyte[] columns = new sbyte[24];
        for (int o = 0; o < 3; o++)
        {
            for (int i = 0; i < 8; i++)
            {
                columns[i * 3 + o] = weights[o * 8 + i];
            }
        }
        var g = new OnnxGraphBuilder();
        g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [input.Scale]), g.UInt8s("z", [], [(byte)input.ZeroPoint])], ["xq"])
            .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["xr"])
            .Node("DequantizeLinear", "w_dq", [g.Int8s("w", [8, 3], columns), g.Floats("ws", [3], scales)], ["wr"], OnnxAttribute.Int("axis", 1))
            .Node("MatMul", "fc", ["xr", "wr"], ["m"])
            .Node("Add", "fc_bias", ["m", g.Floats("b", [3], realBias)], ["y"])
            .Input("x", OnnxDataType.Float, "N", 8)
            .Output("y", OnnxDataType.Float, "N", 3);
        QuantizedNetwork back = OnnxModel.Load(g.Build(), "matmul-qdq.onnx").Int8!;

        Assert.Equal(LogitsMode.Int32Accumulator, back.Logits);
        Assert.Equal(biasCodes, ((QuantizedLinear)back.Layers[0]).Bias);
        FloatTensor x = OnnxTestNetworks.Inputs(9, [8]);
        Assert.Equal(OnnxTestNetworks.Logits(expected, x), OnnxTestNetworks.Logits(back, x));
    }

    [Fact]
    public void A_relu_after_the_last_qdq_layer_becomes_its_fused_relu_and_clamps_the_logits_at_zero()
    {
        var input = new QuantParams(0.02f, 10, 0, 255);
        sbyte[] weights = [.. TestData.Uniform(24, 43).Select(v => (sbyte)MathF.Round(v * 127))];   // [out 3, in 8]
        OnnxGraphBuilder Graph(bool relu)
        {
            var g = new OnnxGraphBuilder();
            g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [input.Scale]), g.UInt8s("z", [], [(byte)input.ZeroPoint])], ["xq"])
                .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["xr"])
                .Node("DequantizeLinear", "w_dq", [g.Int8s("w", [3, 8], weights), g.Floats("ws", [], [0.01f])], ["wr"])
                .Node("Gemm", "fc", ["xr", "wr"], [relu ? "m" : "y"], OnnxAttribute.Int("transB", 1));
            if (relu)
            {
                g.Node("Relu", "last_relu", ["m"], ["y"]);
            }
            return g.Input("x", OnnxDataType.Float, "N", 8).Output("y", OnnxDataType.Float, "N", 3);
        }
        QuantizedNetwork plain = OnnxModel.Load(Graph(relu: false).Build(), "plain.onnx").Int8!;
        QuantizedNetwork rectified = OnnxModel.Load(Graph(relu: true).Build(), "relu.onnx").Int8!;

        Assert.True(((QuantizedLinear)rectified.Layers[0]).FusedRelu);
        FloatTensor x = OnnxTestNetworks.Inputs(9, [8]);
        float[] expected = [.. OnnxTestNetworks.Logits(plain, x).Select(v => Math.Max(v, 0f))];
        Assert.Contains(OnnxTestNetworks.Logits(plain, x), v => v < 0f);   // the clamp has something to do
        Assert.Equal(expected, OnnxTestNetworks.Logits(rectified, x));
    }

    /// <summary>
    /// onnx.proto is proto2, where repeated numbers are unpacked unless declared packed: protobuf's own writers put
    /// each dimension, attribute int and typed value in a field of its own. The reader takes both forms.
    /// </summary>
    [Fact]
    public void Proto2_unpacked_repeated_fields_are_read_like_packed_ones()
    {
        Sequential network = OnnxTestNetworks.Tiny(seed: 9);
        var conv = (Conv2d)network["conv1"];
        var fc = (Linear)network["fc1"];
        void FloatTensor(ProtoWriter t, string name, long[] dims, float[] values)
        {
            foreach (long d in dims)
            {
                t.Int(1, d);                             // dims, one field each
            }
            t.Int(2, (int)OnnxDataType.Float);
            foreach (float v in values)
            {
                t.Float(4, v);                           // float_data, one fixed32 field each
            }
            t.String(8, name);
        }
        void Ints(ProtoWriter a, string name, params long[] values)
        {
            a.String(1, name).Int(20, 7);
            foreach (long v in values)
            {
                a.Int(8, v);                             // ints, one varint field each
            }
        }
        void Node(ProtoWriter graph, string op, string name, string[] inputs, string output, Action<ProtoWriter>? attributes = null) =>
            graph.Message(1, n =>
            {
                foreach (string i in inputs)
                {
                    n.String(1, i);
                }
                n.String(2, output).String(3, name).String(4, op);
                attributes?.Invoke(n);
            });
        byte[] model = new ProtoWriter()
            .Int(1, 7)
            .Message(8, o => o.String(1, "").Int(2, 13))
            .Message(7, graph =>
            {
                Node(graph, "Conv", "conv", ["x", "w", "b"], "c", n => n.Message(5, a => Ints(a, "pads", 1, 1, 1, 1)).Message(5, a => Ints(a, "kernel_shape", 3, 3)));
                Node(graph, "Relu", "relu", ["c"], "r");
                Node(graph, "AveragePool", "pool", ["r"], "p", n => n.Message(5, a => Ints(a, "kernel_shape", 2, 2)).Message(5, a => Ints(a, "strides", 2, 2)));
                Node(graph, "Reshape", "flat", ["p", "shape"], "f");
                Node(graph, "Gemm", "fc", ["f", "fw", "fb"], "y", n => n.Message(5, a => a.String(1, "transB").Int(20, 2).Int(3, 1)));
                graph.Message(5, t => FloatTensor(t, "w", [2, 1, 3, 3], Values(conv.Weight)));
                graph.Message(5, t => FloatTensor(t, "b", [2], Values(conv.Bias)));
                graph.Message(5, t => FloatTensor(t, "fw", [3, 18], Values(fc.Weight)));
                graph.Message(5, t => FloatTensor(t, "fb", [3], Values(fc.Bias)));
                graph.Message(5, t => t.Int(1, 2).Int(2, (int)OnnxDataType.Int64).Int(7, -1).Int(7, 18).String(8, "shape"));   // int64_data unpacked
                graph.Message(11, v => v.String(1, "x").Message(2, type => type.Message(1, tt => tt.Int(1, 1).Message(2, shape =>
                    shape.Message(1, d => d.String(2, "N")).Message(1, d => d.Int(1, 1)).Message(1, d => d.Int(1, 6)).Message(1, d => d.Int(1, 6))))));
                graph.Message(12, v => v.String(1, "y"));
            })
            .ToArray();
        Sequential back = OnnxModel.Load(model, "proto2.onnx").Float!;
        FloatTensor x = OnnxTestNetworks.Inputs(3, OnnxTestNetworks.TinyInput);
        Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(back, x));
    }
}
