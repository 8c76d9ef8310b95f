using Engine.Data;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tests.Data;

namespace Engine.Tests.IO;

public sealed class AllocationBoundTests
{
    [Fact]
    public void A_gzip_idx_promising_100_MB_in_a_tiny_file_allocates_little_before_failing()
    {
        using var dir = new TempIdxDirectory();
        byte[] gz = TempIdxDirectory.Gzip(TempIdxDirectory.Build([1, 2], 99_999_999));
        Assert.True(gz.Length < 64, $"{gz.Length} bytes");
        string path = dir.Write("bomb-idx1-ubyte.gz", gz);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path, 1));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.True(allocated < 2_000_000, $"{allocated:N0} bytes allocated for a {gz.Length}-byte file");

        // A real gzip payload larger than the first buffer still reads whole.
        byte[] pixels = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        string big = dir.Write("big-idx3-ubyte.gz", TempIdxDirectory.Gzip(TempIdxDirectory.Build(pixels, 3, 400, 250)));
        Assert.Equal(pixels, IdxReader.Read(big, 3).Data);
    }

    [Fact]
    public void An_input_shape_past_the_activation_limit_is_refused_at_load_naming_the_key()
    {
        Sequential network = SeedNetwork.Create(2, conv1Channels: 2, conv2Channels: 2, hidden: 4);
        // No architecture: the seed topology pools whatever the input is down to fc1, so only the limit stops this.
        var tensors = network.NamedParameters().Select(p => SafeTensor.FromFloats(p.Name, p.Parameter.Value.Shape.ToArray(), p.Parameter.Value.Data)).ToList();
        foreach (string shape in new[] { "1,8192,8192", "1,23168,23168" })
        {
            byte[] bytes = new SafeTensorsFile(tensors, new Dictionary<string, string> { ["input_shape"] = shape }).ToBytes();
            var e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(bytes, "big.safetensors"));
            Assert.Contains("big.safetensors", e.Message);
            Assert.Contains("input_shape", e.Message);
        }
        byte[] fine = new SafeTensorsFile(tensors, new Dictionary<string, string> { ["input_shape"] = "1,64,64" }).ToBytes();
        Assert.Equal([1, 64, 64], ModelFile.LoadFloat(fine, "ok.safetensors").InputShape);

        QuantizedNetwork q = Quantizer.Quantize(network, new InMemoryBatches(TestData.Uniform(8 * 1024, 4), [1, 32, 32]), 8, 0f, 1f);
        var file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(q), "q.safetensors");
        var meta = new Dictionary<string, string>(file.Metadata) { ["input_shape"] = "1,8192,8192" };
        var qe = Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(new SafeTensorsFile(file.Tensors, meta).ToBytes(), "q.safetensors"));
        Assert.Contains("input_shape", qe.Message);
    }

    [Fact]
    public void A_convolution_whose_im2col_matrix_is_past_the_limit_is_refused_at_load_naming_the_layer()
    {
        // Every activation is within the limit (1 x 1024 x 1024 in, 1 x 1009 x 1009 out), but 256 taps x 1009^2 pixels is not.
        var network = new Sequential(("conv1", new Conv2d(1, 1, 16)), ("pool", new AvgPool2d(1009, 1009)), ("flatten", new Flatten()), ("fc1", new Linear(1, 2)));
        network.Initialize(new SeededRandom(5));
        byte[] bytes = ModelFile.ToBytes(network, 0f, 1f, [1, 1024, 1024]);
        var e = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(bytes, "wide.safetensors"));
        Assert.Contains("wide.safetensors", e.Message);
        Assert.Contains("layer 'conv1'", e.Message);
        Assert.Contains("im2col", e.Message);
        ModelFile.LoadFloat(ModelFile.ToBytes(SeedNetwork.Create(1, 2, 2, 4), 0f, 1f, [1, 32, 32]), "seed.safetensors");
    }
}
