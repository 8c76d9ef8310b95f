using Engine.Quantization;

namespace Engine.Tests.Quantization;

/// <summary>Weight codes of 4 to 8 bits (<see cref="Quantizer.QuantizeWeights"/>, <see cref="Quantizer.FakeQuantizeWeights"/>).</summary>
public class WeightBitsTests
{
    private static float[] Weights(int count, ulong seed)
    {
        var random = new SeededRandom(seed);
        return Enumerable.Range(0, count).Select(_ => random.NextUniform(-0.7f, 0.4f)).ToArray();
    }

    [Theory]
    [InlineData(8, true)]
    [InlineData(7, true)]
    [InlineData(6, true)]
    [InlineData(5, true)]
    [InlineData(4, true)]
    [InlineData(8, false)]
    [InlineData(6, false)]
    [InlineData(4, false)]
    public void Codes_fill_the_range_of_their_bits_and_fake_quantization_is_their_dequantized_value(int bits, bool perChannel)
    {
        const int channels = 5, depth = 37;
        float[] w = Weights(channels * depth, (ulong)bits);
        var (codes, scales, zeroPoints) = Quantizer.QuantizeWeights(w, channels, perChannel, bits);
        int qmax = (1 << (bits - 1)) - 1, qmin = perChannel ? -qmax : -(1 << (bits - 1));
        Assert.All(codes, q => Assert.InRange(q, qmin, qmax));
        float[] fake = new float[w.Length];
        Quantizer.FakeQuantizeWeights(w, channels, perChannel, bits, fake);
        for (int c = 0; c < channels; c++)
        {
            int s = perChannel ? c : 0;
            var row = codes.AsSpan(c * depth, depth).ToArray();
            if (perChannel)
            {
                // The largest magnitude of each row lands on +-qmax: the row uses its whole range.
                Assert.Equal(qmax, row.Max(q => Math.Abs((int)q)));
            }
            for (int p = 0; p < depth; p++)
            {
                int i = c * depth + p;
                Assert.Equal(scales[s] * (codes[i] - zeroPoints[s]), fake[i]);
                Assert.True(MathF.Abs(fake[i] - w[i]) <= scales[s] / 2 * (1 + 1e-5f), $"w[{i}] = {w[i]} -> {fake[i]}");
            }
        }
        if (!perChannel)
        {
            Assert.Equal(qmin, codes.Min());
            Assert.Equal(qmax, codes.Max());
        }
    }

    [Fact]
    public void Eight_bits_is_the_default_and_fewer_bits_give_coarser_steps()
    {
        float[] w = Weights(3 * 11, 3);
        Assert.Equal(Quantizer.QuantizeWeights(w, 3, true).Codes, Quantizer.QuantizeWeights(w, 3, true, 8).Codes);
        float error8 = Error(w, 8), error4 = Error(w, 4);
        Assert.True(error4 > 4 * error8, $"4-bit error {error4}, 8-bit error {error8}");

        static float Error(float[] w, int bits)
        {
            float[] fake = new float[w.Length];
            Quantizer.FakeQuantizeWeights(w, 3, true, bits, fake);
            return w.Zip(fake, (a, b) => MathF.Abs(a - b)).Sum();
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(9)]
    public void Bits_outside_four_to_eight_are_refused(int bits)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Quantizer.QuantizeWeights(new float[4], 2, true, bits));
        var options = new QuantizationOptions { LayerWeightBits = new Dictionary<string, int> { ["fc1"] = bits } };
        Assert.Equal(8, options.WeightBitsOf("fc2"));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => options.WeightBitsOf("fc1"));
        Assert.Contains("fc1", error.Message);
    }
}
