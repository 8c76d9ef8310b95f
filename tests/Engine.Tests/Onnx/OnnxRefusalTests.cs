using Engine.Onnx;
using Engine.Onnx.Protobuf;

namespace Engine.Tests.Onnx;

/// <summary>Every graph outside the supported set is refused with an InvalidDataException naming the file, the operator and the node.</summary>
public sealed class OnnxRefusalTests
{
    private static readonly float[] ConvWeights = TestData.Uniform(18, 1);

    // x [N, 1, 6, 6] -> conv (3x3, pad 1) -> relu -> flatten -> fc (72 -> 3) -> y, with hooks to change one piece.
    private static byte[] Graph(
        OnnxAttribute[]? convAttributes = null, int[]? convWeightShape = null, string activation = "Relu", string activationName = "relu",
        Action<OnnxGraphBuilder>? extra = null, OnnxAttribute[]? gemmAttributes = null, string flattenInput = "r")
    {
        var g = new OnnxGraphBuilder();
        int[] shape = convWeightShape ?? [2, 1, 3, 3];
        g.Node("Conv", "conv", ["x", g.Floats("w", shape, TestData.Uniform(shape.Aggregate(1, (p, d) => p * d), 1)), g.Floats("b", [2], [0.1f, -0.1f])], ["c"],
                convAttributes ?? [OnnxAttribute.Ints("pads", 1, 1, 1, 1)])
            .Node(activation, activationName, ["c"], ["r"])
            .Node("Flatten", "flat", [flattenInput], ["f"])
            .Node("Gemm", "fc", ["f", g.Floats("fw", [3, 72], TestData.Uniform(216, 2)), g.Floats("fb", [3], [0f, 0f, 0f])], ["y"],
                gemmAttributes ?? [OnnxAttribute.Int("transB", 1)])
            .Input("x", OnnxDataType.Float, "N", 1, 6, 6)
            .Output("y", OnnxDataType.Float, "N", 3);
        extra?.Invoke(g);
        return g.Build();
    }

    private static void Refused(byte[] model, params string[] fragments)
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(model, "bad.onnx"));
        Assert.Contains("bad.onnx", e.Message);
        foreach (string fragment in fragments)
        {
            Assert.Contains(fragment, e.Message);
        }
    }

    [Fact]
    public void The_base_graph_is_accepted() => Assert.NotNull(OnnxModel.Load(Graph(), "good.onnx").Float);

    [Fact]
    public void An_unknown_operator_is_named() => Refused(Graph(activation: "Softmax", activationName: "act"), "Softmax", "'act'");

    [Fact]
    public void Grouped_convolution_is_refused() =>
        Refused(Graph(convAttributes: [OnnxAttribute.Int("group", 2)]), "Conv node 'conv'", "group 2");

    [Fact]
    public void Dilated_convolution_is_refused() =>
        Refused(Graph(convAttributes: [OnnxAttribute.Ints("dilations", 2, 2)]), "Conv node 'conv'", "dilations");

    [Fact]
    public void A_non_square_kernel_is_refused() => Refused(Graph(convWeightShape: [2, 1, 3, 2]), "Conv node 'conv'", "3x2");

    [Fact]
    public void Asymmetric_padding_is_refused() =>
        Refused(Graph(convAttributes: [OnnxAttribute.Ints("pads", 1, 1, 0, 0)]), "Conv node 'conv'", "pads");

    [Fact]
    public void Unequal_strides_are_refused() =>
        Refused(Graph(convAttributes: [OnnxAttribute.Ints("strides", 1, 2)]), "Conv node 'conv'", "strides");

    [Fact]
    public void An_unknown_attribute_is_refused() =>
        Refused(Graph(convAttributes: [OnnxAttribute.Int("channels_last", 1)]), "Conv node 'conv'", "channels_last");

    [Fact]
    public void Gemm_with_alpha_or_transA_is_refused()
    {
        Refused(Graph(gemmAttributes: [OnnxAttribute.Int("transB", 1), OnnxAttribute.Float("alpha", 2f)]), "Gemm node 'fc'", "alpha");
        Refused(Graph(gemmAttributes: [OnnxAttribute.Int("transB", 1), OnnxAttribute.Int("transA", 1)]), "Gemm node 'fc'", "transA");
    }

    [Fact]
    public void A_second_graph_input_is_refused() =>
        Refused(Graph(extra: g => g.Input("mask", OnnxDataType.Float, "N", 3)), "2 inputs", "'mask'");

    [Fact]
    public void A_branch_is_refused() =>
        Refused(Graph(extra: g => g.Node("Relu", "side", ["c"], ["s"])), "Relu node", "also feeds", "branches");

    [Fact]
    public void A_merge_of_two_activations_is_refused() => Refused(MergeGraph(), "Add node 'merge'", "2 non-constant values");

    private static byte[] MergeGraph()
    {
        var g = new OnnxGraphBuilder();
        g.Node("Relu", "a", ["x"], ["r"])
            .Node("Relu", "b", ["r"], ["s"])
            .Node("Add", "merge", ["r", "s"], ["y"])
            .Input("x", OnnxDataType.Float, "N", 4)
            .Output("y", OnnxDataType.Float, "N", 4);
        return g.Build();
    }

    [Fact]
    public void A_standalone_add_is_refused()
    {
        var g = new OnnxGraphBuilder();
        g.Node("Add", "shift", ["x", g.Floats("k", [4], [1f, 2f, 3f, 4f])], ["y"])
            .Input("x", OnnxDataType.Float, "N", 4)
            .Output("y", OnnxDataType.Float, "N", 4);
        Refused(g.Build(), "Add node 'shift'", "bias");
    }

    [Fact]
    public void A_node_reading_an_unknown_value_or_off_the_path_is_refused()
    {
        Refused(Graph(extra: g => g.Node("Relu", "ghost", ["nowhere"], ["g"])), "Relu node 'ghost'", "'nowhere'");
        // A cycle of two nodes that nothing reaches.
        Refused(Graph(extra: g => g.Node("Relu", "loop_a", ["lb"], ["la"]).Node("Relu", "loop_b", ["la"], ["lb"])), "not on the path");
    }

    [Fact]
    public void Pooling_with_padding_and_flatten_on_another_axis_are_refused()
    {
        var g = new OnnxGraphBuilder();
        g.Node("AveragePool", "pool", ["x"], ["y"], OnnxAttribute.Ints("kernel_shape", 2, 2), OnnxAttribute.Ints("pads", 1, 1, 1, 1))
            .Input("x", OnnxDataType.Float, "N", 1, 6, 6).Output("y", OnnxDataType.Float, "N", 1, 4, 4);
        Refused(g.Build(), "AveragePool node 'pool'", "padding");
        g = new OnnxGraphBuilder();
        g.Node("Flatten", "flat2", ["x"], ["y"], OnnxAttribute.Int("axis", 2))
            .Input("x", OnnxDataType.Float, "N", 1, 6, 6).Output("y", OnnxDataType.Float, "N", 36);
        Refused(g.Build(), "Flatten node 'flat2'", "axis 2");
    }

    [Fact]
    public void Reshape_to_anything_but_batch_by_features_is_refused()
    {
        var g = new OnnxGraphBuilder();
        g.Node("Reshape", "to3d", ["x", g.Int64s("s", [3], [-1, 6, 6])], ["y"])
            .Input("x", OnnxDataType.Float, "N", 1, 6, 6).Output("y", OnnxDataType.Float, "N", 6, 6);
        Refused(g.Build(), "Reshape node 'to3d'", "shape [-1, 6, 6]");
    }

    [Fact]
    public void Int8_activations_and_float_weights_in_a_quantized_graph_are_refused()
    {
        var g = new OnnxGraphBuilder();
        g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [0.1f]), g.Int8s("z", [], [0])], ["xq"])
            .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["y"])
            .Input("x", OnnxDataType.Float, "N", 4).Output("y", OnnxDataType.Float, "N", 4);
        Refused(g.Build(), "QuantizeLinear node 'q'", "uint8");

        g = new OnnxGraphBuilder();
        g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [0.1f]), g.UInt8s("z", [], [3])], ["xq"])
            .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["xr"])
            .Node("Gemm", "fc", ["xr", g.Floats("w", [2, 4], new float[8])], ["y"], OnnxAttribute.Int("transB", 1))
            .Input("x", OnnxDataType.Float, "N", 4).Output("y", OnnxDataType.Float, "N", 2);
        Refused(g.Build(), "Gemm node 'fc'", "DequantizeLinear");
    }

    [Fact]
    public void Int8_pooling_that_changes_scale_and_a_bias_of_the_wrong_scale_are_refused()
    {
        var g = new OnnxGraphBuilder();
        g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [0.1f]), g.UInt8s("z", [], [0])], ["xq"])
            .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["xr"])
            .Node("AveragePool", "pool", ["xr"], ["p"], OnnxAttribute.Ints("kernel_shape", 2, 2), OnnxAttribute.Ints("strides", 2, 2))
            .Node("QuantizeLinear", "pool_q", ["p", g.Floats("s2", [], [0.05f]), "z"], ["pq"])
            .Node("DequantizeLinear", "pool_dq", ["pq", "s2", "z"], ["y"])
            .Input("x", OnnxDataType.Float, "N", 1, 4, 4).Output("y", OnnxDataType.Float, "N", 1, 2, 2);
        Refused(g.Build(), "QuantizeLinear node 'pool_q'", "scale");

        g = new OnnxGraphBuilder();
        g.Node("QuantizeLinear", "q", ["x", g.Floats("s", [], [0.1f]), g.UInt8s("z", [], [0])], ["xq"])
            .Node("DequantizeLinear", "dq", ["xq", "s", "z"], ["xr"])
            .Node("DequantizeLinear", "w_dq", [g.Int8s("w", [2, 4], new sbyte[8]), g.Floats("ws", [], [0.01f])], ["wr"])
            .Node("DequantizeLinear", "b_dq", [g.Int32s("b", [2], [1, 2]), g.Floats("bs", [], [0.5f])], ["br"])
            .Node("Gemm", "fc", ["xr", "wr", "br"], ["y"], OnnxAttribute.Int("transB", 1))
            .Input("x", OnnxDataType.Float, "N", 4).Output("y", OnnxDataType.Float, "N", 2);
        Refused(g.Build(), "DequantizeLinear node 'b_dq'", "bias scale");
    }

    [Fact]
    public void External_data_and_wrong_byte_counts_are_refused_naming_the_tensor()
    {
        byte[] external = new ProtoWriter()
            .Message(7, graph => graph
                .Message(5, t => t.PackedInts(1, [4L]).Int(2, 1).String(8, "far_away").Int(14, 1))
                .Message(11, v => v.String(1, "x")).Message(12, v => v.String(1, "y")))
            .ToArray();
        Refused(external, "'far_away'", "external");

        var g = new OnnxGraphBuilder();
        g.Raw("short", OnnxDataType.Float, [2, 3], new byte[20]);
        g.Node("Relu", "r", ["x"], ["y"]).Input("x", OnnxDataType.Float, "N", 4).Output("y", OnnxDataType.Float, "N", 4);
        Refused(g.Build(), "'short'", "20 bytes");
    }

    [Fact]
    public void Something_that_is_not_onnx_is_refused()
    {
        Refused("{\"not\": \"onnx\"}"u8.ToArray());
        Refused([]);
    }
}
