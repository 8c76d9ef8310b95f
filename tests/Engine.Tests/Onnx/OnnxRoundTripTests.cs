using Engine.Layers;
using Engine.Onnx;
using Engine.Quantization;
using Engine.Tensors;

namespace Engine.Tests.Onnx;

public sealed class OnnxRoundTripTests
{
    public static TheoryData<string> Shapes => ["seed", "odd"];

    private static (Sequential Network, int[] Input) Network(string shape) =>
        shape == "seed" ? (OnnxTestNetworks.Seed(), OnnxTestNetworks.SeedInput) : (OnnxTestNetworks.Odd(), OnnxTestNetworks.OddInput);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_float_network_comes_back_with_identical_logits_layers_and_metadata(string shape)
    {
        (Sequential network, int[] input) = Network(shape);
        byte[] onnx = OnnxExporter.Export(network, input, 0.1f, 0.3f);

        OnnxImport imported = OnnxModel.Load(onnx, "float.onnx");
        Assert.Null(imported.Int8);
        Assert.NotNull(imported.Float);
        Assert.Equal(input, imported.InputShape);
        Assert.Equal(0.1f, imported.InputMean);
        Assert.Equal(0.3f, imported.InputStd);
        Assert.Equal("engine.float", imported.Metadata["format"]);
        Assert.Equal(network.Layers.Select(l => $"{l.Name}={l.Layer}"), imported.Float!.Layers.Select(l => $"{l.Name}={l.Layer}"));
        FloatTensor x = OnnxTestNetworks.Inputs(5, input);
        Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(imported.Float, x));
    }

    [Theory]
    [InlineData("seed", true, LogitsMode.Int32Accumulator)]
    [InlineData("seed", true, LogitsMode.DequantizedOutput)]
    [InlineData("seed", false, LogitsMode.Int32Accumulator)]
    [InlineData("odd", true, LogitsMode.Int32Accumulator)]
    [InlineData("odd", false, LogitsMode.DequantizedOutput)]
    public void An_int8_network_comes_back_with_identical_logits_and_layers(string shape, bool perChannel, LogitsMode logits)
    {
        (Sequential network, int[] input) = Network(shape);
        QuantizedNetwork quantized = OnnxTestNetworks.Quantize(network, input, perChannel, logits);
        byte[] onnx = OnnxExporter.Export(quantized);

        OnnxImport imported = OnnxModel.Load(onnx, "int8.onnx");
        Assert.Null(imported.Float);
        QuantizedNetwork back = imported.Int8!;
        Assert.Equal(logits, back.Logits);
        Assert.Equal(quantized.Input, back.Input);
        Assert.Equal(input, back.InputShape);
        Assert.Equal(0.1f, back.InputMean);
        Assert.Equal(0.3f, back.InputStd);
        Assert.Equal(quantized.Layers.Select(l => $"{l.Name}={l}"), back.Layers.Select(l => $"{l.Name}={l}"));
        foreach ((QuantizedWeightedLayer a, QuantizedWeightedLayer b) in quantized.Layers.OfType<QuantizedWeightedLayer>().Zip(back.Layers.OfType<QuantizedWeightedLayer>()))
        {
            Assert.Equal(a.Weights, b.Weights);
            Assert.Equal(a.Bias, b.Bias);
            Assert.Equal(a.WeightZeroPoints, b.WeightZeroPoints);
            Assert.Equal(a.FusedRelu, b.FusedRelu);
            Assert.Equal(a.Input, b.Input);
            if (!(a == quantized.Layers[^1] && logits == LogitsMode.Int32Accumulator))
            {
                Assert.Equal(a.Output, b.Output);       // the last layer's output quantization is not used with int32 logits, and not exported
            }
            Assert.Equal(a.WeightScales, b.WeightScales);
        }
        FloatTensor x = OnnxTestNetworks.Inputs(7, input);
        Assert.Equal(OnnxTestNetworks.Logits(quantized, x), OnnxTestNetworks.Logits(back, x));
    }

    [Fact]
    public void The_int8_export_has_the_documented_qdq_shape_and_an_integer_last_layer()
    {
        QuantizedNetwork quantized = OnnxTestNetworks.Quantize(OnnxTestNetworks.Seed(), OnnxTestNetworks.SeedInput);
        OnnxModelProto model = OnnxModelProto.Read(OnnxExporter.Export(quantized), "int8.onnx");
        var ops = OnnxGraph.Resolve(model, "int8.onnx").Chain.Select(n => n.OpType).ToList();
        Assert.Equal(
        [
            "QuantizeLinear", "DequantizeLinear", "Conv", "Relu", "QuantizeLinear",
            "DequantizeLinear", "Conv", "Relu", "QuantizeLinear",
            "DequantizeLinear", "AveragePool", "Add", "QuantizeLinear", "Flatten",
            "DequantizeLinear", "Gemm", "Relu", "QuantizeLinear",
            "MatMulInteger", "Add", "Cast", "Mul",
        ], ops);
        Assert.Equal(13, model.Opsets[""]);
        Assert.Equal("int32_accumulator", model.Metadata["logits"]);
        Assert.Equal("1,32,32", model.Metadata["input_shape"]);
        Assert.Equal("input", model.Inputs.Single().Name);
        Assert.Equal("logits", model.Outputs.Single().Name);
        Assert.Equal([null, 1L, 32L, 32L], model.Inputs.Single().Dims);
    }

    [Fact]
    public void Save_writes_the_file_and_load_reads_it_by_path()
    {
        string dir = Path.Combine(Path.GetTempPath(), "engine-onnx-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "model.onnx");
            Sequential network = OnnxTestNetworks.Tiny();
            OnnxExporter.Save(OnnxExporter.Export(network, OnnxTestNetworks.TinyInput, 0f, 1f), path);
            Assert.Equal(["model.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName));
            OnnxImport imported = OnnxModel.Load(path);
            FloatTensor x = OnnxTestNetworks.Inputs(2, OnnxTestNetworks.TinyInput);
            Assert.Equal(OnnxTestNetworks.Logits(network, x), OnnxTestNetworks.Logits(imported.Float!, x));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void An_int8_network_ending_in_a_convolution_with_int32_logits_is_refused_by_the_exporter()
    {
        var network = new Sequential(("conv1", new Conv2d(1, 2, 3, padding: 1)), ("relu1", new ReLU()), ("conv2", new Conv2d(2, 3, 3)));
        network.Initialize(new SeededRandom(2));
        QuantizedNetwork quantized = OnnxTestNetworks.Quantize(network, [1, 6, 6]);
        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(quantized));
        Assert.Contains("conv2", e.Message);
        Assert.Contains("dequantized-output", e.Message);

        // With dequantized-output logits it exports, and comes back with the same logits.
        QuantizedNetwork dequantized = OnnxTestNetworks.Quantize(network, [1, 6, 6], logits: LogitsMode.DequantizedOutput);
        QuantizedNetwork back = OnnxModel.Load(OnnxExporter.Export(dequantized), "conv.onnx").Int8!;
        FloatTensor x = OnnxTestNetworks.Inputs(3, [1, 6, 6]);
        Assert.Equal(OnnxTestNetworks.Logits(dequantized, x), OnnxTestNetworks.Logits(back, x));
    }
}
