using System.Globalization;
using Engine.Data;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;
using Engine.Statistics;
using Engine.Training;

namespace Engine.Tests.IO;

/// <summary>Non-finite parameters, degenerate normalisation and impossible statistics are refused at load, naming the tensor or key.</summary>
public sealed class NumericFaultTests
{
    private static readonly Sequential Network = SeedNetwork.Create(8, conv1Channels: 2, conv2Channels: 2, hidden: 4);

    internal static byte[] Replace(byte[] bytes, string tensor, Func<SafeTensor, SafeTensor> change, Dictionary<string, string>? metadata = null)
    {
        var file = SafeTensorsFile.Read(bytes, "x");
        return new SafeTensorsFile(file.Tensors.Select(t => t.Name == tensor ? change(t) : t), metadata ?? new Dictionary<string, string>(file.Metadata)).ToBytes();
    }

    private static SafeTensor SetFloat(SafeTensor t, int index, float value)
    {
        float[] v = t.ToFloats();
        v[index] = value;
        return SafeTensor.FromFloats(t.Name, t.Shape, v);
    }

    private static byte[] WithMeta(byte[] bytes, string key, string value)
    {
        var file = SafeTensorsFile.Read(bytes, "x");
        return new SafeTensorsFile(file.Tensors, new Dictionary<string, string>(file.Metadata) { [key] = value }).ToBytes();
    }

    private static void Refused(Action load, params string[] expected)
    {
        var e = Assert.Throws<InvalidDataException>(load);
        Assert.Contains("m.safetensors", e.Message);
        foreach (string s in expected)
        {
            Assert.Contains(s, e.Message);
        }
    }

    [Fact]
    public void Float_files_with_non_finite_or_overflowing_weights_are_refused_naming_the_tensor()
    {
        byte[] good = ModelFile.ToBytes(Network, 0.1f, 0.3f, [1, 32, 32]);
        ModelFile.LoadFloat(good, "m.safetensors");
        Refused(() => ModelFile.LoadFloat(Replace(good, "conv1.weight", t => SetFloat(t, 5, float.NaN)), "m.safetensors"), "conv1.weight", "index 5");
        Refused(() => ModelFile.LoadFloat(Replace(good, "fc2.bias", t => SetFloat(t, 3, float.PositiveInfinity)), "m.safetensors"), "fc2.bias");
        Refused(() => ModelFile.LoadFloat(Replace(good, "fc1.weight", t => SetFloat(t, 0, float.NegativeInfinity)), "m.safetensors"), "fc1.weight");
        // Finite, but a worst-case pixel input drives the layer past float range.
        Refused(() => ModelFile.LoadFloat(Replace(good, "conv1.weight", t => SetFloat(t, 0, 3e37f)), "m.safetensors"), "conv1");
    }

    [Theory]
    [InlineData("input_std", "1e-45")]
    [InlineData("input_std", "0")]
    [InlineData("input_std", "-0.3")]
    [InlineData("input_std", "NaN")]
    [InlineData("input_std", "Infinity")]
    [InlineData("input_std", "1e-9")]
    [InlineData("input_mean", "3.4e38")]
    [InlineData("input_mean", "-3.4e38")]
    [InlineData("input_mean", "NaN")]
    [InlineData("input_mean", "-Infinity")]
    public void Degenerate_normalisation_is_refused_naming_the_key_in_float_and_int8_files(string key, string value)
    {
        byte[] good = ModelFile.ToBytes(Network, 0.1f, 0.3f, [1, 32, 32]);
        Refused(() => ModelFile.LoadFloat(WithMeta(good, key, value), "m.safetensors"), key);
        byte[] q = QuantizedModelFile.ToBytes(Quantize());
        Refused(() => QuantizedModelFile.Load(WithMeta(q, key, value), "m.safetensors"), key);
    }

    private static QuantizedNetwork Quantize() =>
        Quantizer.Quantize(Network, new InMemoryBatches(TestData.Uniform(8 * 1024, 4), [1, 32, 32]), 8, 0.1f, 0.3f);

    [Theory]
    [InlineData("conv1.weight_scale", float.NaN)]
    [InlineData("fc2.weight_scale", float.PositiveInfinity)]
    [InlineData("input.scale", float.NaN)]
    [InlineData("fc1.output_scale", float.PositiveInfinity)]
    public void Int8_files_with_non_finite_or_overflowing_scales_are_refused_naming_the_tensor(string tensor, float value)
    {
        byte[] good = QuantizedModelFile.ToBytes(Quantize());
        QuantizedModelFile.Load(good, "m.safetensors");
        Refused(() => QuantizedModelFile.Load(Replace(good, tensor, t => SetFloat(t, 0, value)), "m.safetensors"), tensor);
    }

    [Fact]
    public void Int8_scales_that_make_logits_overflow_are_refused_naming_the_tensor()
    {
        byte[] good = QuantizedModelFile.ToBytes(Quantize());
        // Scaling weight and output scale together keeps every requantization multiplier valid.
        byte[] big = Replace(Replace(good, "fc2.weight_scale", t => SafeTensor.FromFloats(t.Name, t.Shape, t.ToFloats().Select(v => v * 1e28f).ToArray())),
            "fc2.output_scale", t => SafeTensor.FromFloats(t.Name, t.Shape, t.ToFloats().Select(v => v * 1e28f).ToArray()));
        Refused(() => QuantizedModelFile.Load(big, "m.safetensors"), "fc2.weight_scale");
    }

    [Theory]
    [InlineData("fc1.weight.grad_m2", double.NaN)]
    [InlineData("fc1.weight.grad_m2", double.PositiveInfinity)]
    [InlineData("conv2.bias.grad_m2", -1.0)]
    [InlineData("fc1.taylor_abs_m2", -0.5)]
    [InlineData("conv1.weight.grad_mean", double.NaN)]
    [InlineData("fc1.taylor_mean", double.NegativeInfinity)]
    public void Gradient_statistics_with_impossible_moments_are_refused_naming_the_tensor(string tensor, double value)
    {
        byte[] good = StatisticsBytes(Network);
        Load(good);
        byte[] bad = Replace(good, tensor, t =>
        {
            double[] v = t.ToDoubles();
            v[^1] = value;
            return SafeTensor.FromDoubles(t.Name, t.Shape, v);
        });
        Refused(() => Load(bad), tensor);
        byte[] negative = Replace(good, "fc1.weight.grad_count", t => SafeTensor.FromInt64s(t.Name, [1], [-3]));
        Refused(() => Load(negative), "fc1.weight.grad_count");
        byte[] retyped = Replace(good, tensor, t => SafeTensor.FromRaw(t.Name, SafeTensorDType.I64, t.Shape, t.Data));
        Refused(() => Load(retyped), tensor, "expected F64");
    }

    private static GradientStatistics Load(byte[] bytes) =>
        GradientStatisticsFile.FromFile(SafeTensorsFile.Read(bytes, "m.safetensors"), "m.safetensors", Network, [1, 32, 32]);

    /// <summary>The statistics file of two training steps of <paramref name="network"/> (its weights are left as they were).</summary>
    internal static byte[] StatisticsBytes(Sequential network)
    {
        var stats = new GradientStatistics(network, [1, 32, 32]);
        var loss = new CrossEntropyLoss();
        for (int step = 0; step < 2; step++)
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(TestData.FloatTensor(60 + (ulong)step, 3, 1, 32, 32)), [step, 4, 9]);
            network.Backward(loss.Backward());
            stats.OnGradients(network);
        }
        string path = Path.Combine(Path.GetTempPath(), $"engine-stats-{Guid.NewGuid():N}.safetensors");
        try
        {
            GradientStatisticsFile.Save(stats, path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
