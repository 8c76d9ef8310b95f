using Engine.Data;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;

namespace Engine.Tests.IO;

public sealed class ArchitectureTextTests
{
    private const string SeedFloat = "conv1=conv2d(3,1,1);relu1=relu;conv2=conv2d(3,1,1);relu2=relu;pool=avgpool2d(4,4);flatten=flatten;fc1=linear;relu3=relu;fc2=linear";
    private const string SeedInt8 = "conv1=conv2d(3,1,1,relu);conv2=conv2d(3,1,1,relu);pool=avgpool2d(4,4);flatten=flatten;fc1=linear(relu);fc2=linear";

    [Fact]
    public void The_strings_both_generators_write_parse_to_their_layers()
    {
        Assert.Equal(SeedFloat, SeedNetwork.Create(1, 2, 2, 4).DescribeArchitecture());
        List<ArchitectureEntry> f = ArchitectureText.Parse(SeedFloat, "m", allowFusedRelu: false);
        Assert.Equal(["conv1", "relu1", "conv2", "relu2", "pool", "flatten", "fc1", "relu3", "fc2"], f.Select(e => e.Name));
        Assert.Equal([3, 1, 1], f[0].Numbers);
        Assert.Equal(ArchitectureKind.AvgPool2d, f[4].Kind);
        Assert.Equal([4, 4], f[4].Numbers);

        List<ArchitectureEntry> q = ArchitectureText.Parse(SeedInt8, "m", allowFusedRelu: true);
        Assert.True(q[0].FusedRelu);
        Assert.True(q[4].FusedRelu);
        Assert.False(q[5].FusedRelu);
        Assert.Equal(ArchitectureKind.Linear, q[5].Kind);
        // Spaces around numbers and empty entries stay accepted, as documented.
        Assert.Equal([5, 2, 0], ArchitectureText.Parse(";c=conv2d( 5 , 2,0 );;", "m", false)[0].Numbers);
    }

    [Theory]
    [InlineData("conv1=conv2d(3,1,1", "'conv1=conv2d(3,1,1'")]
    [InlineData("conv1(=conv2d(3,1,1)", "'conv1(=conv2d(3,1,1)'")]
    [InlineData("conv1=conv2d(3,1,1))", "parentheses")]
    [InlineData("conv1=conv2d)3,1,1(", "parentheses")]
    [InlineData("=linear", "layer name ''")]
    [InlineData("a.b=linear", "layer name 'a.b'")]
    [InlineData("fc1", "not 'name=kind'")]
    [InlineData("fc1=dense", "unknown layer kind 'dense'")]
    [InlineData("r=relu(1)", "takes none")]
    [InlineData("f=flatten(2)", "takes none")]
    [InlineData("f=flatten()", "empty parentheses")]
    [InlineData("fc=linear(3)", "takes none")]
    [InlineData("c=conv2d(3,1)", "takes 3")]
    [InlineData("c=conv2d(3,1,1,1)", "takes 3")]
    [InlineData("p=avgpool2d(4)", "takes 2")]
    [InlineData("p=avgpool2d(0,4)", "kernel 0")]
    [InlineData("p=avgpool2d(4,-1)", "stride -1")]
    [InlineData("c=conv2d(3,0,1)", "stride 0")]
    [InlineData("c=conv2d(3,1,-2)", "padding -2")]
    [InlineData("c=conv2d(3,1,2147483637)", "above")]
    [InlineData("c=conv2d(3,1,99999999999)", "not a decimal integer")]
    [InlineData("c=conv2d(+3,1,1)", "'+3'")]
    [InlineData("c=conv2d(3x,1,1)", "'3x'")]
    [InlineData("c=conv2d(3,1,1,relu)", "fused relu")]
    [InlineData("a=relu;a=flatten", "reuses the layer name 'a'")]
    [InlineData(";;", "names no layer")]
    public void Malformed_float_entries_are_refused_naming_the_file_and_entry(string text, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ArchitectureText.Parse(text, "net.safetensors", allowFusedRelu: false));
        Assert.StartsWith("net.safetensors: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("p=avgpool2d(2,2,relu)", "fused relu on avgpool2d")]
    [InlineData("r=relu(relu)", "fused relu on relu")]
    [InlineData("c=conv2d(3,1,relu,1)", "takes 3")]
    [InlineData("fc=linear(relu,relu)", "takes none")]
    [InlineData("fc=linear( relu)", "gives linear 1 argument")]
    public void Fused_relu_markers_are_only_accepted_where_int8_writes_them(string text, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ArchitectureText.Parse(text, "q.safetensors", allowFusedRelu: true));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Names_order_by_their_numeric_suffix()
    {
        string[] names = ["fc10", "conv10", "conv2", "conv1", "fc2", "conv02", "conv"];
        Assert.Equal(["conv", "conv1", "conv02", "conv2", "conv10", "fc2", "fc10"], names.Order(Comparer<string>.Create(ArchitectureText.CompareNames)));
    }

    [Fact]
    public void Both_loaders_refuse_a_malformed_entry_with_an_invalid_data_exception_naming_file_and_entry()
    {
        Sequential network = SeedNetwork.Create(3, conv1Channels: 2, conv2Channels: 2, hidden: 4);
        byte[] floatBytes = ModelFile.ToBytes(network, 0.1f, 0.3f, [1, 32, 32]);
        var floatFile = SafeTensorsFile.Read(floatBytes, "f.safetensors");
        var meta = new Dictionary<string, string>(floatFile.Metadata) { ["architecture"] = SeedFloat.Replace("conv2d(3,1,1);relu1", "conv2d(3,1,1;relu1") };
        var e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(new SafeTensorsFile(floatFile.Tensors, meta).ToBytes(), "f.safetensors"));
        Assert.Contains("f.safetensors: architecture entry 'conv1=conv2d(3,1,1'", e.Message);
        meta["architecture"] = SeedFloat.Replace("pool=avgpool2d(4,4)", "pool=avgpool2d(0,4)");
        e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(new SafeTensorsFile(floatFile.Tensors, meta).ToBytes(), "f.safetensors"));
        Assert.Contains("'pool=avgpool2d(0,4)'", e.Message);

        var inputs = TestData.Uniform(20 * 1024, 9);
        QuantizedNetwork q = Quantizer.Quantize(network, new InMemoryBatches(inputs, [1, 32, 32]), 20, 0.1f, 0.3f);
        var qFile = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(q), "q.safetensors");
        var qMeta = new Dictionary<string, string>(qFile.Metadata) { ["architecture"] = SeedInt8.Replace("conv1=", "conv1(=") };
        e = Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(new SafeTensorsFile(qFile.Tensors, qMeta).ToBytes(), "q.safetensors"));
        Assert.Contains("q.safetensors: architecture entry 'conv1(=conv2d(3,1,1,relu)'", e.Message);
    }

    [Fact]
    public void Without_architecture_layers_are_ordered_by_number_and_bad_names_are_refused()
    {
        // conv2 (1 -> 3 channels) runs before conv10 (3 -> 2): string order would put conv10 first and fail.
        var network = new Sequential(
            ("conv2", new Conv2d(1, 3, 3, 1, 1)), ("relu1", new ReLU()),
            ("conv10", new Conv2d(3, 2, 3, 1, 1)), ("relu2", new ReLU()),
            ("pool", new AvgPool2d(8, 8)), ("flatten", new Flatten()),
            ("fc2", new Linear(32, 5)), ("relu3", new ReLU()), ("fc10", new Linear(5, 4)));
        network.Initialize(new SeededRandom(7));
        var tensors = network.NamedParameters().Select(p => SafeTensor.FromFloats(p.Name, p.Parameter.Value.Shape.ToArray(), p.Parameter.Value.Data)).ToList();
        FloatModel loaded = ModelFile.LoadFloat(new SafeTensorsFile(tensors).ToBytes(), "torch.safetensors");
        Assert.Equal(["conv2", "relu1", "conv10", "relu2", "pool", "flatten", "fc2", "relu3", "fc10"], loaded.Network.Layers.Select(l => l.Name));
        FloatTensor x = TestData.FloatTensor(3, 2, 1, 32, 32);
        Assert.Equal(network.Forward(x).Data.ToArray(), loaded.Network.Forward(x).Data.ToArray());

        foreach (string bad in new[] { "", "a.b" })
        {
            var renamed = tensors.Select(t => t.Name.StartsWith("conv2.", StringComparison.Ordinal)
                ? SafeTensor.FromFloats(bad + t.Name[5..], t.Shape, t.ToFloats()) : t);
            var e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(new SafeTensorsFile(renamed).ToBytes(), "torch.safetensors"));
            Assert.Contains("torch.safetensors", e.Message);
        }
        // A convolution called like a generated ReLU: a clash of names, refused as bad data.
        var clash = tensors.Select(t => t.Name.StartsWith("conv10.", StringComparison.Ordinal)
            ? SafeTensor.FromFloats("relu1" + t.Name[6..], t.Shape, t.ToFloats()) : t);
        var c = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(new SafeTensorsFile(clash).ToBytes(), "torch.safetensors"));
        Assert.Contains("torch.safetensors", c.Message);
    }
}
