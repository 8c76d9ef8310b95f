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

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_variant_equals_the_scalar_reference_bit_for_bit(KernelVariant variant)
    {
        var random = new SeededRandom(11);
        int cases = 0;
        foreach (int length in new[] { 0, 1, 7, 31, 32, 33, 100 })
        {
            for (int trial = 0; trial < 60; trial++)
            {
                double multiplier = Math.Pow(2, -30 + 33 * random.NextDouble());   // 2^-30 .. 2^3: shifts from -29 to +3
                (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(multiplier);
                int[] acc = Accumulators(length, random);
                int addend = trial % 3 == 0 ? int.MaxValue - random.NextInt(100) : random.NextInt(20001) - 10000;   // wrapping sums too
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

    [Fact]
    public void A_zero_mantissa_gives_the_zero_point_and_bad_ranges_are_refused()
    {
        int[] acc = [int.MinValue, -5, 0, 5, int.MaxValue, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28];
        byte[] codes = new byte[acc.Length];
        RequantizeS32.Row(acc, 0, 0, 0, 77, 0, 255, codes);
        Assert.All(codes, c => Assert.Equal(77, c));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 10, 5, codes));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, -1, 255, codes));
        Assert.Throws<ArgumentException>(() => RequantizeS32.Row(acc, 0, 1 << 30, -1, 0, 0, 255, new byte[3]));
    }
}
