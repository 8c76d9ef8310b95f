using Engine.Kernels;

namespace Engine.Tests.Quantization;

public class AvgPoolQ8Tests
{
    public static TheoryData<KernelVariant> Variants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in AvgPoolQ8.SupportedVariants)
        {
            data.Add(v);
        }
        return data;
    }

    // Odd and even planes, below and above one 16-column vector, with every kernel 1..4 and stride 1..4 that fits.
    private static IEnumerable<ConvGeometry> Geometries()
    {
        (int H, int W)[] planes = [(1, 1), (5, 7), (9, 33), (32, 32), (4, 17), (6, 16)];
        int channels = 0;
        foreach ((int h, int w) in planes)
        foreach (int kernel in new[] { 1, 2, 3, 4 })
        foreach (int stride in new[] { 1, 2, 3, 4 })
        {
            if (kernel <= h && kernel <= w)
            {
                yield return new ConvGeometry(channels++ % 5 + 1, h, w, kernel, kernel, stride, stride, 0, 0);
            }
        }
        // Rectangular windows and strides that differ per axis.
        yield return new ConvGeometry(2, 9, 33, 3, 2, 1, 3, 0, 0);
        yield return new ConvGeometry(3, 32, 32, 1, 4, 4, 1, 0, 0);
    }

    private static byte[] Codes(int length, SeededRandom random, int fill) =>
        Enumerable.Range(0, length).Select(_ => fill >= 0 ? (byte)fill : (byte)random.NextInt(256)).ToArray();

    private static void AssertMatchesReference(ConvGeometry g, byte[] x, KernelVariant variant)
    {
        int outSize = g.Channels * g.OutHeight * g.OutWidth;
        byte[] expected = new byte[outSize], actual = Enumerable.Repeat((byte)0xCD, outSize).ToArray();
        AvgPoolQ8.ForwardScalar<byte>(x, g, expected);
        AvgPoolQ8.Forward(x, g, actual, variant);
        Assert.Equal(expected, actual);

        sbyte[] xs = x.Select(v => unchecked((sbyte)v)).ToArray();
        sbyte[] expectedS = new sbyte[outSize], actualS = Enumerable.Repeat((sbyte)-51, outSize).ToArray();
        AvgPoolQ8.ForwardScalar<sbyte>(xs, g, expectedS);
        AvgPoolQ8.Forward(xs, g, actualS, variant);
        Assert.Equal(expectedS, actualS);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_variant_equals_the_scalar_reference_bit_for_bit(KernelVariant variant)
    {
        var random = new SeededRandom(21);
        int shapes = 0;
        foreach (ConvGeometry g in Geometries())
        {
            // Random codes, then the ends of both types: 255 (-1 as int8), 0, 127 and 128 (-128 as int8).
            foreach (int fill in new[] { -1, 255, 0, 127, 128 })
            {
                AssertMatchesReference(g, Codes(g.InputSize, random, fill), variant);
            }
            shapes++;
        }
        Assert.True(shapes > 60, $"only {shapes} geometries");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Large_windows_and_wide_planes_match_the_reference(KernelVariant variant)
    {
        var random = new SeededRandom(22);
        ConvGeometry[] cases =
        [
            new(2, 32, 32, 17, 17, 5, 5, 0, 0),     // 289 x 255 > 65535: window sums outgrow uint16, column sums do not
            new(1, 300, 20, 300, 2, 1, 2, 0, 0),    // kh x 255 > 65535: the scalar path
            new(1, 2, 5000, 2, 3, 1, 3, 0, 0),      // wider than the stack buffer: the scalar path
        ];
        foreach (ConvGeometry g in cases)
        {
            AssertMatchesReference(g, Codes(g.InputSize, random, 255), variant);
            AssertMatchesReference(g, Codes(g.InputSize, random, 128), variant);
            AssertMatchesReference(g, Codes(g.InputSize, random, -1), variant);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Ties_round_half_away_from_zero_on_both_signs(KernelVariant variant)
    {
        // 2 x 2 windows over 32 columns: sums 2k + {0, 1, 2, 3} give means k, k + 0.25, k + 0.5, k + 0.75.
        var g = new ConvGeometry(1, 2, 32, 2, 2, 2, 2, 0, 0);
        byte[] x = new byte[g.InputSize];
        sbyte[] xs = new sbyte[g.InputSize];
        for (int ow = 0; ow < 16; ow++)
        {
            int extra = ow % 4;
            for (int k = 0; k < 4; k++)
            {
                int at = k / 2 * 32 + 2 * ow + k % 2;
                x[at] = (byte)(10 + (k < extra ? 1 : 0));
                xs[at] = (sbyte)-(10 + (k < extra ? 1 : 0));
            }
        }
        byte[] y = new byte[16];
        sbyte[] ys = new sbyte[16];
        AvgPoolQ8.Forward(x, g, y, variant);
        AvgPoolQ8.Forward(xs, g, ys, variant);
        for (int ow = 0; ow < 16; ow++)
        {
            int expected = ow % 4 >= 2 ? 11 : 10;      // 10.5 -> 11, 10.25 -> 10, 10.75 -> 11
            Assert.Equal(expected, y[ow]);
            Assert.Equal(-expected, ys[ow]);           // -10.5 -> -11
        }
    }

    [Fact]
    public void Padding_and_short_spans_are_refused()
    {
        var g = new ConvGeometry(1, 4, 4, 2, 2, 2, 2, 0, 0);
        foreach (KernelVariant v in AvgPoolQ8.SupportedVariants)
        {
            Assert.Throws<ArgumentException>(() => AvgPoolQ8.Forward(new byte[16], g with { PadHeight = 1 }, new byte[9], v));
            Assert.Throws<ArgumentException>(() => AvgPoolQ8.Forward(new byte[15], g, new byte[4], v));
            Assert.Throws<ArgumentException>(() => AvgPoolQ8.Forward(new byte[16], g, new byte[3], v));
            Assert.Throws<ArgumentException>(() => AvgPoolQ8.Forward(new sbyte[16], g with { StrideWidth = 0 }, new sbyte[4], v));
        }
    }
}
