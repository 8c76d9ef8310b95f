using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Tests.Quantization;

public class QuantParamsTests
{
    [Theory]
    [InlineData(-1f, 3f, 0, 255)]
    [InlineData(0.2f, 5f, 0, 255)]
    [InlineData(-7f, -0.5f, -128, 127)]
    [InlineData(-0.013f, 6.2f, -128, 127)]
    public void Real_zero_is_exact_and_round_trips_stay_within_half_a_step(float min, float max, int qmin, int qmax)
    {
        QuantParams p = QuantParams.Asymmetric(min, max, qmin, qmax);
        Assert.InRange(p.ZeroPoint, qmin, qmax);
        Assert.Equal(0f, p.Dequantize(p.Quantize(0f)));
        Assert.Equal(p.ZeroPoint, p.Quantize(0f));
        var random = new SeededRandom(1);
        float lo = MathF.Min(min, 0f), hi = MathF.Max(max, 0f);
        for (int i = 0; i < 2000; i++)
        {
            // Inside the representable range every value comes back within scale / 2.
            float x = random.NextUniform(p.Dequantize(qmin), p.Dequantize(qmax));
            Assert.True(MathF.Abs(p.Dequantize(p.Quantize(x)) - x) <= p.Scale / 2 * (1 + 1e-5f), $"{x} -> {p.Quantize(x)}");
        }
        Assert.True(p.Dequantize(qmin) <= lo + p.Scale && p.Dequantize(qmax) >= hi - p.Scale, "the range is covered");
    }

    [Fact]
    public void Values_outside_the_range_saturate_at_both_ends()
    {
        QuantParams p = QuantParams.Asymmetric(-1f, 1f, 0, 255);
        Assert.Equal(0, p.Quantize(-1e30f));
        Assert.Equal(255, p.Quantize(1e30f));
        Assert.Equal(255, p.Quantize(float.PositiveInfinity));
        Assert.Equal(0, p.Quantize(float.NegativeInfinity));
        Assert.Equal(p.ZeroPoint, p.Quantize(float.NaN));
        QuantParams w = QuantParams.Symmetric(2.54f);
        Assert.Equal((0, -127, 127), (w.ZeroPoint, w.QMin, w.QMax));
        Assert.Equal(-127, w.Quantize(-100f));
        Assert.Equal(127, w.Quantize(100f));
    }

    [Fact]
    public void Ties_round_away_from_zero()
    {
        var p = new QuantParams(1f, 0, -128, 127);
        Assert.Equal(3, p.Quantize(2.5f));
        Assert.Equal(-3, p.Quantize(-2.5f));
        Assert.Equal(1, p.Quantize(0.5f));
        Assert.Equal(-1, p.Quantize(-0.5f));
        Assert.Equal(0, p.Quantize(0.49999997f));
        Assert.Equal(2, p.Quantize(1.5f));
    }

    [Fact]
    public void Degenerate_and_invalid_ranges()
    {
        Assert.Equal(1f, QuantParams.Asymmetric(0f, 0f, 0, 255).Scale);
        Assert.Throws<ArgumentException>(() => QuantParams.Asymmetric(2f, 1f, 0, 255));
        Assert.Throws<ArgumentException>(() => QuantParams.Asymmetric(float.NaN, 1f, 0, 255));
        Assert.Throws<ArgumentException>(() => QuantParams.Asymmetric(0f, 1f, 5, 5));
        Assert.Throws<ArgumentException>(() => QuantParams.Symmetric(-1f));
    }
}

public class QuantizeKernelTests
{
    public static TheoryData<int> Lengths() => [0, 1, 7, 8, 9, 17, 33, 1000];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Vector_quantization_equals_the_scalar_reference_bit_for_bit(int length)
    {
        float[] x = TestData.Uniform(length, 3, -4f, 4f);
        // Exact ties and near-ties for the chosen scale, and the extremes.
        float[] special = [0.25f, -0.25f, 0.75f, -0.75f, 0.12499999f, 1e30f, -1e30f, float.NaN, 0f, -0f];
        for (int i = 0; i < Math.Min(length, special.Length); i++)
        {
            x[i] = special[i];
        }
        QuantParams u8 = QuantParams.Asymmetric(-1.5f, 2.5f, 0, 255);
        var p = u8 with { Scale = 0.5f };
        foreach (QuantParams q in new[] { u8, p })
        {
            byte[] fast = new byte[length], reference = new byte[length];
            QuantizeF32.ToUInt8(x, q, fast);
            QuantizeF32.ToUInt8(x, q, reference, vectorised: false);
            Assert.Equal(reference, fast);
        }
        QuantParams s8 = QuantParams.Symmetric(3f);
        sbyte[] fast8 = new sbyte[length], reference8 = new sbyte[length];
        QuantizeF32.ToInt8(x, s8, fast8);
        QuantizeF32.ToInt8(x, s8, reference8, vectorised: false);
        Assert.Equal(reference8, fast8);
    }

    [Fact]
    public void Parameters_that_do_not_fit_the_type_are_refused()
    {
        Assert.Throws<ArgumentException>(() => QuantizeF32.ToUInt8([1f], QuantParams.Symmetric(1f), new byte[1]));
        Assert.Throws<ArgumentException>(() => QuantizeF32.ToInt8([1f], QuantParams.Asymmetric(0f, 1f, 0, 255), new sbyte[1]));
        Assert.Throws<ArgumentException>(() => QuantizeF32.ToUInt8([1f, 2f], QuantParams.Asymmetric(0f, 1f, 0, 255), new byte[1]));
    }
}

public class FixedPointTests
{
    [Fact]
    public void Left_shifts_of_any_size_saturate_instead_of_wrapping()
    {
        // 2^30 x 2^34 does not fit int32: the shifted input saturates, exactly as at shift 31 (a 64-bit shift by 34
        // overflowed to 0 before).
        int atLimit = FixedPoint.SaturatingRoundingDoublingHighMul(int.MaxValue, 1 << 30);
        Assert.Equal(atLimit, FixedPoint.MultiplyByQuantizedMultiplier(1 << 30, 1 << 30, 34));
        Assert.Equal(atLimit, FixedPoint.MultiplyByQuantizedMultiplier(1 << 30, 1 << 30, 31));
        Assert.Equal(FixedPoint.SaturatingRoundingDoublingHighMul(int.MinValue, 1 << 30), FixedPoint.MultiplyByQuantizedMultiplier(-(1 << 30), 1 << 30, 34));
        foreach (int shift in new[] { 32, 33, 63, 64, 65, 100, int.MaxValue })
        {
            Assert.Equal(atLimit, FixedPoint.MultiplyByQuantizedMultiplier(1, 1 << 30, shift));
            Assert.Equal(FixedPoint.SaturatingRoundingDoublingHighMul(int.MinValue, 1 << 30), FixedPoint.MultiplyByQuantizedMultiplier(-1, 1 << 30, shift));
            Assert.Equal(0, FixedPoint.MultiplyByQuantizedMultiplier(0, 1 << 30, shift));
        }
        // Right shifts beyond 31 round everything to 0 (the high multiply is below 2^31 in magnitude).
        foreach (int shift in new[] { -32, -33, -64, -100, int.MinValue })
        {
            Assert.Equal(0, FixedPoint.MultiplyByQuantizedMultiplier(int.MaxValue, int.MaxValue, shift));
            Assert.Equal(0, FixedPoint.MultiplyByQuantizedMultiplier(int.MinValue, int.MaxValue, shift));
        }
        // The requantization kernel agrees, vector and scalar, and saturates the codes.
        int[] acc = [1, -1, 1 << 20, -(1 << 20), 0, int.MaxValue, int.MinValue, 7];
        foreach (KernelVariant variant in RequantizeS32.SupportedVariants)
        {
            byte[] codes = new byte[acc.Length];
            RequantizeS32.Row(acc, 0, 1 << 30, 64, 128, 0, 255, codes, variant);
            Assert.Equal(new byte[] { 255, 0, 255, 0, 128, 255, 0, 255 }, codes);
        }
    }

    [Fact]
    public void Quantized_multipliers_keep_the_shift_in_TFLites_range()
    {
        // TFLite (quantization_util.cc, QuantizeMultiplier) saturates a shift above 30 to (2^31 - 1, 30) and flushes one
        // below -31 to (0, 0).
        Assert.Equal((int.MaxValue, FixedPoint.MaxShift), FixedPoint.QuantizeMultiplier(Math.Pow(2, 40)));
        Assert.Equal((int.MaxValue, 30), FixedPoint.QuantizeMultiplier(Math.Pow(2, 30)));
        Assert.Equal((int.MaxValue, 30), FixedPoint.QuantizeMultiplier(double.MaxValue));
        Assert.Equal((1 << 30, 30), FixedPoint.QuantizeMultiplier(Math.Pow(2, 29)));
        Assert.Equal((0, 0), FixedPoint.QuantizeMultiplier(Math.Pow(2, -40)));
        Assert.Equal((1 << 30, -31), FixedPoint.QuantizeMultiplier(Math.Pow(2, -32)));
        Assert.Equal(-31, FixedPoint.MinShift);
        var random = new SeededRandom(8);
        for (int i = 0; i < 1000; i++)
        {
            (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(Math.Exp(random.NextUniform(-40f, 40f)));
            Assert.InRange(shift, FixedPoint.MinShift, FixedPoint.MaxShift);
            Assert.True(mantissa == 0 ? shift == 0 : mantissa >= 1 << 30, $"{mantissa} 2^{shift}");
        }
    }

    [Fact]
    public void Quantized_multipliers_reproduce_the_real_multiplier()
    {
        var random = new SeededRandom(5);
        for (int i = 0; i < 2000; i++)
        {
            double real = Math.Exp(random.NextUniform(-20f, 5f));
            (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(real);
            Assert.InRange(mantissa, 1 << 30, int.MaxValue);
            double back = mantissa / (double)(1L << 31) * Math.Pow(2, shift);
            Assert.True(Math.Abs(back - real) <= real * Math.Pow(2, -30), $"{real}: {mantissa} 2^{shift} = {back}");
        }
        Assert.Equal((1 << 30, 1), FixedPoint.QuantizeMultiplier(1.0));
        Assert.Equal((1 << 30, 0), FixedPoint.QuantizeMultiplier(0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedPoint.QuantizeMultiplier(0));
    }

    [Fact]
    public void Multiplying_by_a_quantized_multiplier_matches_double_rounding_within_one()
    {
        var random = new SeededRandom(6);
        for (int i = 0; i < 20000; i++)
        {
            double real = Math.Exp(random.NextUniform(-12f, 2f));
            int x = (int)(random.NextUInt64() >> 40) - (1 << 23);   // accumulator-sized values, both signs
            (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(real);
            int actual = FixedPoint.MultiplyByQuantizedMultiplier(x, mantissa, shift);
            double exact = x * (mantissa / (double)(1L << 31)) * Math.Pow(2, shift);
            long expected = (long)Math.Round(exact, MidpointRounding.AwayFromZero);
            // Two roundings (the high multiply, then the shift) can differ from one exact rounding by at most 1.
            Assert.True(Math.Abs(actual - expected) <= 1, $"x={x} M={real}: {actual} vs {exact}");
        }
    }

    [Theory]
    [InlineData(5, 1, 3)]      // 2.5 -> 3
    [InlineData(-5, 1, -3)]    // -2.5 -> -3
    [InlineData(7, 2, 2)]      // 1.75 -> 2
    [InlineData(-7, 2, -2)]
    [InlineData(6, 2, 2)]      // 1.5 -> 2
    [InlineData(-6, 2, -2)]    // -1.5 -> -2
    [InlineData(-2, 2, -1)]    // -0.5 -> -1
    [InlineData(int.MinValue, 31, -1)]
    [InlineData(int.MaxValue, 31, 1)]
    [InlineData(123, 0, 123)]
    public void Rounding_divide_by_a_power_of_two_rounds_ties_away_from_zero(int x, int exponent, int expected)
    {
        Assert.Equal(expected, FixedPoint.RoundingDivideByPowerOfTwo(x, exponent));
    }

    [Fact]
    public void Doubling_high_multiply_rounds_and_saturates()
    {
        Assert.Equal(int.MaxValue, FixedPoint.SaturatingRoundingDoublingHighMul(int.MinValue, int.MinValue));
        Assert.Equal(1 << 29, FixedPoint.SaturatingRoundingDoublingHighMul(1 << 30, 1 << 30));    // 0.5 x 0.5 = 0.25
        Assert.Equal(1, FixedPoint.SaturatingRoundingDoublingHighMul(1, 1 << 30));                 // 0.5 -> 1 (tie up)
        Assert.Equal(0, FixedPoint.SaturatingRoundingDoublingHighMul(-1, 1 << 30));                // -0.5 -> 0 (tie up)
        Assert.Equal(-1, FixedPoint.SaturatingRoundingDoublingHighMul(-3, 1 << 30));               // -1.5 -> -1
        Assert.Equal(-2, FixedPoint.SaturatingRoundingDoublingHighMul(-3, (1 << 30) + 1));         // just past -1.5 -> -2
        Assert.Equal(0, FixedPoint.SaturatingRoundingDoublingHighMul(1, (1 << 30) - 1));           // just under 0.5 -> 0
        var random = new SeededRandom(8);
        for (int i = 0; i < 10000; i++)
        {
            int a = (int)random.NextUInt64(), b = (int)random.NextUInt64();
            if (a == int.MinValue && b == int.MinValue)
            {
                continue;
            }
            // Exact reference in integers (a double cannot hold a 62-bit product): floor((a b + 2^30) / 2^31), round half up.
            long shifted = (long)a * b + (1L << 30);
            long quotient = shifted / (1L << 31) - (shifted % (1L << 31) != 0 && shifted < 0 ? 1 : 0);
            Assert.Equal(quotient, FixedPoint.SaturatingRoundingDoublingHighMul(a, b));
        }
    }
}

public class QuantizedLayerStateTests
{
    private static readonly QuantParams Activation = new(0.05f, 10, 0, 255);

    [Fact]
    public void Bias_codes_saturate_at_half_of_int32_and_the_layer_still_builds()
    {
        int[] codes = Quantizer.QuantizeBias([1e30f, -1e30f, 2.5f, -2.5f], new QuantParams(0.5f, 0, 0, 255), [2f]);
        Assert.Equal([int.MaxValue / 2, int.MinValue / 2, 3, -3], codes);
        Assert.Equal(1 << 30, -codes[1]);
        // The documented reason: with the bias at either limit a layer of moderate depth still fits int32.
        var layer = new QuantizedLinear("fc", Activation, Activation, new sbyte[4 * 64], [4, 64], [0.01f], [0], codes, fusedRelu: false);
        Assert.Equal(int.MaxValue / 2, layer.Bias[0]);
    }

    [Fact]
    public void The_layers_parameters_are_copies_that_callers_cannot_change()
    {
        var random = new SeededRandom(9);
        sbyte[] weights = Enumerable.Range(0, 3 * 8).Select(_ => (sbyte)(random.NextInt(255) - 127)).ToArray();
        int[] shape = [3, 8], zeroPoints = [0, 0, 0], bias = [100, -50, 7];
        float[] scales = [0.01f, 0.02f, 0.03f];
        var layer = new QuantizedLinear("fc", Activation, Activation, weights, shape, scales, zeroPoints, bias, fusedRelu: false);
        byte[] input = Enumerable.Range(0, 2 * 8).Select(i => (byte)(i * 13)).ToArray();
        byte[] before = new byte[2 * 3], after = new byte[2 * 3];
        layer.Forward(input, [8], 2, before, new QuantizedWorkspace());
        sbyte[] weightsBefore = [.. weights];

        // Editing the arrays the layer was built from changes neither what it reports nor what it computes.
        Array.Fill(weights, (sbyte)1);
        shape[0] = 99;
        scales[0] = 5f;
        zeroPoints[1] = 3;
        bias[2] = 1 << 20;
        layer.Forward(input, [8], 2, after, new QuantizedWorkspace());
        Assert.Equal(before, after);
        Assert.Equal(weightsBefore, layer.Weights.ToArray());
        Assert.Equal([3, 8], layer.WeightShape.ToArray());
        Assert.Equal([0.01f, 0.02f, 0.03f], layer.WeightScales.ToArray());
        Assert.Equal([0, 0, 0], layer.WeightZeroPoints.ToArray());
        Assert.Equal([100, -50, 7], layer.Bias.ToArray());
    }
}
