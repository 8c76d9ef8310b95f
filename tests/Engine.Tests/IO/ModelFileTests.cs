using Engine.IO;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Tests.IO;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-mf-" + Guid.NewGuid().ToString("N")[..12]);

    public ModelFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_saved_network_loads_back_with_identical_outputs_and_pytorch_names()
    {
        Sequential network = SeedNetwork.Create(seed: 4);
        string path = Path.Combine(_dir, "m.safetensors");
        ModelFile.SaveFloat(network, path, 0.1f, 0.3f, [1, 32, 32]);

        var file = SafeTensorsFile.Read(path);
        Assert.Equal(["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
            file.Tensors.Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(SafeTensorDType.F32, t.DType));
        Assert.Equal([128, 4096], file["fc1.weight"].Shape);
        Assert.Equal("engine.float", file.Metadata["format"]);
        Assert.Equal("0.1", file.Metadata["input_mean"]);
        Assert.Equal("0.3", file.Metadata["input_std"]);

        FloatModel loaded = ModelFile.LoadFloat(path);
        Assert.Equal(0.1f, loaded.InputMean);
        Assert.Equal(0.3f, loaded.InputStd);
        FloatTensor x = TestData.FloatTensor(1, 3, 1, 32, 32);
        Assert.Equal(network.Forward(x).Data.ToArray(), loaded.Network.Forward(x).Data.ToArray());
    }

    [Fact]
    public void A_file_without_architecture_is_read_as_the_seed_topology_like_a_pytorch_state_dict()
    {
        Sequential network = SeedNetwork.Create(seed: 5, conv1Channels: 8, conv2Channels: 16, hidden: 20);
        var tensors = network.NamedParameters().Select(p => SafeTensor.FromFloats(p.Name, p.Parameter.Value.Shape.ToArray(), p.Parameter.Value.Data));
        string path = Path.Combine(_dir, "torch.safetensors");
        new SafeTensorsFile(tensors).Write(path);
        FloatModel loaded = ModelFile.LoadFloat(path);
        FloatTensor x = TestData.FloatTensor(2, 2, 1, 32, 32);
        Assert.Equal(network.Forward(x).Data.ToArray(), loaded.Network.Forward(x).Data.ToArray());
        Assert.Equal(0f, loaded.InputMean);
        Assert.Equal(1f, loaded.InputStd);
    }

    [Fact]
    public void Inconsistent_files_are_refused_naming_the_file_and_tensor()
    {
        Sequential network = SeedNetwork.Create(seed: 6, conv1Channels: 4, conv2Channels: 8, hidden: 10);
        string path = Path.Combine(_dir, "bad.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "engine.float", ["architecture"] = network.DescribeArchitecture() };
        var good = network.NamedParameters().Select(p => SafeTensor.FromFloats(p.Name, p.Parameter.Value.Shape.ToArray(), p.Parameter.Value.Data)).ToList();

        void Expect(IEnumerable<SafeTensor> tensors, string message, Dictionary<string, string>? meta = null)
        {
            new SafeTensorsFile(tensors, meta ?? metadata).Write(path);
            var e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(path));
            Assert.Contains("bad.safetensors", e.Message);
            Assert.Contains(message, e.Message);
        }

        Expect(good.Where(t => t.Name != "fc1.bias"), "tensor 'fc1.bias' is missing");
        Expect(good.Select(t => t.Name == "fc2.bias" ? SafeTensor.FromFloats("fc2.bias", [11], new float[11]) : t), "'fc2.bias' has shape [11]");
        Expect(good.Select(t => t.Name == "conv1.bias" ? SafeTensor.FromInt32s("conv1.bias", [4], new int[4]) : t), "'conv1.bias' is I32");
        Expect(good.Append(SafeTensor.FromFloats("extra", [1], [0f])), "unexpected tensor 'extra'");
        // fc1 reads 4 x 8 x 8 features but conv2 now makes 7 channels: the layers no longer fit.
        Expect(good.Select(t => t.Name switch
        {
            "conv2.weight" => SafeTensor.FromFloats(t.Name, [7, 4, 3, 3], new float[7 * 36]),
            "conv2.bias" => SafeTensor.FromFloats(t.Name, [7], new float[7]),
            _ => t,
        }), "do not fit");
        Expect(good, "format 'engine.int8'", new Dictionary<string, string>(metadata) { ["format"] = "engine.int8" });
        Expect(good, "input_std", new Dictionary<string, string>(metadata) { ["input_std"] = "0" });
    }
}
