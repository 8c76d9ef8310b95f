using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Tests.Quantization;

public class RequantizeTests
{
    public static TheoryData<KernelVariant> Variants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in RequantizeS32.SupportedVariants)
        {
            data.Add(v);
        }
        return data;
    }

    private static int[] Accumulators(int length, SeededRandom random)
    {
        int[] special = [int.MinValue, int.MaxValue, 0, 1, -1, int.MinValue + 1, 1 << 30, -(1 << 30)];
        int[] acc = new int[length];
        for (int i = 0; i < length; i++)
        {
            acc[i] = (i % 5) switch
            {
                0 => special[random.NextInt(special.Length)],
                1 => random.NextInt(2001) - 1000,
                2 => random.NextInt(200_001) - 100_000,
                _ => (int)(random.NextUInt64() >> 32),
            };
        }
        return acc;
    }

    // Multipliers log-uniform over [1e-9, 8) (shifts -29 .. +3), one in eight below 2^-32, where QuantizeMultiplier
    // returns (0, 0).
    private static (int Mantissa, int Shift) Multiplier(SeededRandom random, int trial)
    {
        double multiplier = trial % 8 == 7
            ? Math.Pow(2, -40 + 7.5 * random.NextDouble())
            : 1e-9 * Math.Pow(8e9, random.NextDouble());
        return FixedPoint.QuantizeMultiplier(multiplier);
    }

    private static int Addend(SeededRandom random, int trial) => (trial % 4) switch
    {
        0 => int.MaxValue - random.NextInt(100),          // acc + addend wraps for positive accumulators
        1 => int.MinValue + random.NextInt(100),          // ... and for negative ones
        _ => random.NextInt(20001) - 10000,
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_variant_equals_the_scalar_reference_bit_for_bit(KernelVariant variant)
    {
        var random = new SeededRandom(11);
        int cases = 0, zeroMantissas = 0;
        var shifts = new HashSet<int>();
        foreach (int length in new[] { 0, 1, 7, 31, 32, 33, 100 })
        {
            for (int trial = 0; trial < 60; trial++)
            {
                (int mantissa, int shift) = Multiplier(random, trial);
                zeroMantissas += mantissa == 0 ? 1 : 0;
                shifts.Add(shift);
                int[] acc = Accumulators(length, random);
                int addend = Addend(random, trial);
                int zeroPoint = random.NextInt(256);
                bool relu = trial % 2 == 0;
                byte[] expected = new byte[length], actual = new byte[length];
                RequantizeS32.RowScalar<byte>(acc, addend, mantissa, shift, zeroPoint, relu ? zeroPoint : 0, 255, expected);
                RequantizeS32.Row(acc, addend, mantissa, shift, zeroPoint, relu ? zeroPoint : 0, 255, actual, variant);
                Assert.Equal(expected, actual);
                cases++;
            }
        }
        Assert.Equal(7 * 60, cases);
        Assert.True(zeroMantissas > 0, "no multiplier below 2^-32 was drawn");
        Assert.Contains(3, shifts);
        Assert.Contains(0, shifts);
        Assert.Contains(-29, shifts);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_variant_equals_the_scalar_reference_bit_for_bit_on_int8_codes(KernelVariant variant)
    {
        var random = new SeededRandom(12);
        foreach (int length in new[] { 0, 1, 7, 31, 32, 33, 100 })
        {
            for (int trial = 0; trial < 60; trial++)
            {
                (int mantissa, int shift) = Multiplier(random, trial);
                int[] acc = Accumulators(length, random);
                int addend = Addend(random, trial);
                int zeroPoint = random.NextInt(256) - 128;
                int low = trial % 2 == 0 ? zeroPoint : sbyte.MinValue;
                sbyte[] expected = new sbyte[length], actual = new sbyte[length];
                RequantizeS32.RowScalar<sbyte>(acc, addend, mantissa, shift, zeroPoint, low, 127, expected);
                RequantizeS32.Row(acc, addend, mantissa, shift, zeroPoint, low, 127, actual, variant);
                Assert.Equal(expected, actual);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Scaled_values_near_the_int32_ends_saturate_instead_of_wrapping_with_the_zero_point(KernelVariant variant)
    {
        // At shift 0 with the largest mantissa, int.MaxValue scales to int.MaxValue - 1 and int.MinValue to
        // -int.MaxValue: adding the zero point in int32 would wrap to the other end of the range.
        int[] acc = Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? int.MaxValue - i : int.MinValue + i).ToArray();
        foreach (int shift in new[] { 0, 1, 3, 31 })
        {
            byte[] expected = new byte[acc.Length], actual = new byte[acc.Length];
            RequantizeS32.RowScalar<byte>(acc, 0, int.MaxValue, shift, 255, 0, 255, expected);
            RequantizeS32.Row(acc, 0, int.MaxValue, shift, 255, 0, 255, actual, variant);
            Assert.Equal(expected, actual);
            Assert.Equal(255, actual[0]);
            sbyte[] expectedS = new sbyte[acc.Length], actualS = new sbyte[acc.Length];
            RequantizeS32.RowScalar<sbyte>(acc, 0, int.MaxValue, shift, -128, -128, 127, expectedS);
            RequantizeS32.Row(acc, 0, int.MaxValue, shift, -128, -128, 127, actualS, variant);
            Assert.Equal(expectedS, actualS);
            Assert.Equal(-128, actualS[1]);
        }
        // Zero points far outside the type still follow the reference (the int64 sum clamps).
        foreach (int zeroPoint in new[] { int.MaxValue, int.MinValue, 1 << 30, -(1 << 30) })
        {
            byte[] expected = new byte[acc.Length], actual = new byte[acc.Length];
            RequantizeS32.RowScalar<byte>(acc, 0, 1 << 30, -1, zeroPoint, 0, 255, expected);
            RequantizeS32.Row(acc, 0, 1 << 30, -1, zeroPoint, 0, 255, actual, variant);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Ties_round_as_the_reference_does(KernelVariant variant)
    {
        // Multipliers 1/2, 1/4, 1/8 make every odd accumulator (and more) an exact tie, on both signs.
        int[] acc = Enumerable.Range(-40, 80).ToArray();
        foreach (double multiplier in new[] { 0.5, 0.25, 0.125, 0.75, 1.0 / 3 })
        {
            (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(multiplier);
            byte[] expected = new byte[acc.Length], actual = new byte[acc.Length];
            RequantizeS32.RowScalar<byte>(acc, 0, mantissa, shift, 128, 0, 255, expected);
            RequantizeS32.Row(acc, 0, mantissa, shift, 128, 0, 255, actual, variant);
            Assert.Equal(expected, actual);
            sbyte[] expectedS = new sbyte[acc.Length], actualS = new sbyte[acc.Length];
            RequantizeS32.RowScalar<sbyte>(acc, 0, mantissa, shift, 0, -128, 127, expectedS);
            RequantizeS32.Row(acc, 0, mantissa, shift, 0, -128, 127, actualS, variant);
            Assert.Equal(expectedS, actualS);
            if (multiplier == 0.5)
            {
                // With shift 0 the tie is decided by the doubling high multiply, which rounds ties toward +infinity
                // (gemmlowp): 0.5 -> 1, 1.5 -> 2, but -0.5 -> 0 and -1.5 -> -1. TFLite's kernels give the same codes.
                Assert.Equal(128 + 1, actual[40 + 1]);
                Assert.Equal(128 + 2, actual[40 + 3]);
                Assert.Equal(128, actual[40 - 1]);
                Assert.Equal(128 - 1, actual[40 - 3]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void A_zero_mantissa_gives_the_zero_point_and_bad_ranges_are_refused(KernelVariant variant)
    {
        int[] acc = [int.MinValue, -5, 0, 5, int.MaxValue, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28];
        byte[] codes = new byte[acc.Length];
        RequantizeS32.Row(acc, 0, 0, 0, 77, 0, 255, codes, variant);
        Assert.All(codes, c => Assert.Equal(77, c));
        (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(1e-11);
        Assert.Equal((0, 0), (mantissa, shift));
        sbyte[] codesS = new sbyte[acc.Length];
        RequantizeS32.Row(acc, int.MaxValue, mantissa, shift, -3, -128, 127, codesS, variant);
        Assert.All(codesS, c => Assert.Equal(-3, c));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 10, 5, codes, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, -1, 255, codes, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 0, 256, codes, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 0, 255, new byte[3], variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, -129, 127, codesS, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 0, 128, codesS, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 5, -5, codesS, variant));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, -128, 127, new sbyte[3], variant));
    }
}
