using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Tests.IO;

public sealed class GeometryOverflowTests
{
    [Fact]
    public void Padding_that_wraps_the_padded_size_is_refused_not_wrapped()
    {
        // 32 + 2 x 2147483637 wraps to 10 in int arithmetic, which a 3x3 window "fits".
        var g = new ConvGeometry(1, 32, 32, 3, 3, 1, 1, 2147483637, 2147483637);
        Assert.Throws<ArgumentException>(() => g.Validate("conv1"));
        var wide = new ConvGeometry(64, 8192, 8192, 3, 3, 1, 1, 1, 1);   // 64 x 8194^2 elements: past int
        Assert.Throws<ArgumentException>(() => wide.Validate("conv1"));
        new ConvGeometry(64, 32, 32, 3, 3, 1, 1, 1, 1).Validate("conv2");

        var network = new Sequential(("conv1", new Conv2d(1, 2, 3, 1, 2147483637)), ("pool", new AvgPool2d(1, 1)), ("flatten", new Flatten()), ("fc1", new Linear(200, 10)));
        Assert.Throws<ArgumentException>(() => network.OutputShape([1, 1, 32, 32]));
        Assert.Throws<ArgumentException>(() => new Flatten().OutputShape([1, 65536, 65536, 2]));
    }

    [Fact]
    public void Quantized_sizes_are_checked_and_a_wrapping_int8_input_shape_is_refused_at_load()
    {
        Assert.Throws<ArgumentException>(() => QuantizedLayer.Size([32768, 65536, 1]));
        Assert.Equal(4096, QuantizedLayer.Size([1, 64, 64]));

        // A linear-only model on 4096 features: 4096 x 17 x 61681 wraps to 4096 in int arithmetic.
        var network = new Sequential(("flatten", new Flatten()), ("fc1", new Linear(4096, 10)));
        network.Initialize(new SeededRandom(3));
        QuantizedNetwork q = Quantizer.Quantize(network, new InMemoryBatches(TestData.Uniform(8 * 4096, 4), [1, 64, 64]), 8, 0f, 1f);
        var file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(q), "lin.safetensors");
        foreach (string shape in new[] { "4096,17,61681", "32768,65536,1" })
        {
            var meta = new Dictionary<string, string>(file.Metadata) { ["input_shape"] = shape };
            var e = Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(new SafeTensorsFile(file.Tensors, meta).ToBytes(), "lin.safetensors"));
            Assert.Contains("lin.safetensors", e.Message);
        }
    }
}
