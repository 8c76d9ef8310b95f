using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>
/// Winograd F(4 x 4, 3 x 3) against the direct convolution computed in double, and the fast kernel against the plain
/// scalar Winograd. Tolerance: the error is measured relative to S = |b| + sum |w| |x| over the output's 9 Cin taps (the
/// size of the numbers that were added). A direct float sum errs by at most (9 Cin + 1) u S (u = 2^-24). Winograd's
/// transforms scale the data by up to 5 (B^T) and 8 (A^T) and then cancel, and every output of a tile mixes all 36 inputs
/// of the tile, so its rounding error follows the magnitudes of the whole 6 x 6 tile rather than the output's own 9 taps:
/// no bound in S alone holds for adversarial data (taps near zero beside large neighbours). On these shapes, with
/// uniform data in [-1, 1], the measured worst error is 8.5e-6 S (conv1's shape, Cin = 1: the fewest terms) and
/// 2.3e-6 S for conv2's shape (about 40 u S); the assertions use 3e-5 S, 3.5 times the worst measured case.
/// docs/float-engine.md reports the same comparison on the bundled model.
/// </summary>
public class WinogradTests
{
    private const double RelativeTolerance = 3e-5;

    public static TheoryData<int, int, int, int, int> Geometries() => new()
    {
        // channels in, out, height, width, padding
        { 1, 1, 1, 1, 1 },
        { 3, 5, 5, 7, 1 },
        { 17, 3, 6, 6, 1 },
        { 3, 17, 33, 31, 1 },
        { 32, 64, 32, 32, 1 },
        { 5, 7, 9, 40, 0 },
        { 4, 6, 7, 11, 2 },
        { 1, 32, 32, 32, 1 },
        { 17, 13, 12, 70, 1 },
    };

    // y[o, p] = b[o] + sum x w in double, and S[o, p] = |b[o]| + sum |x| |w|.
    private static (double[] Y, double[] S) Direct(float[] image, ConvGeometry g, float[] weights, int cout, float[] bias)
    {
        int oh = g.OutHeight, ow = g.OutWidth;
        var y = new double[cout * oh * ow];
        var s = new double[y.Length];
        for (int o = 0; o < cout; o++)
        {
            for (int r = 0; r < oh; r++)
            {
                for (int q = 0; q < ow; q++)
                {
                    double sum = bias.Length == 0 ? 0 : bias[o], abs = Math.Abs(sum);
                    for (int c = 0; c < g.Channels; c++)
                    {
                        for (int i = 0; i < 3; i++)
                        {
                            for (int j = 0; j < 3; j++)
                            {
                                int h = r + i - g.PadHeight, w = q + j - g.PadWidth;
                                if (h >= 0 && h < g.Height && w >= 0 && w < g.Width)
                                {
                                    double p = (double)image[(c * g.Height + h) * g.Width + w] * weights[((o * g.Channels + c) * 3 + i) * 3 + j];
                                    sum += p;
                                    abs += Math.Abs(p);
                                }
                            }
                        }
                    }
                    y[(o * oh + r) * ow + q] = sum;
                    s[(o * oh + r) * ow + q] = abs;
                }
            }
        }
        return (y, s);
    }

    private static double AssertClose(string what, double[] expected, double[] scale, ReadOnlySpan<float> actual)
    {
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double ratio = Math.Abs(expected[i] - actual[i]) / Math.Max(scale[i], 1e-30);
            Assert.True(ratio <= RelativeTolerance, $"{what} [{i}]: {actual[i]} vs {expected[i]} (error {ratio:E2} of sum |w||x|)");
            worst = Math.Max(worst, ratio);
        }
        return worst;
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Scalar_reference_matches_the_direct_convolution(int cin, int cout, int h, int w, int pad)
    {
        var g = new ConvGeometry(cin, h, w, 3, 3, 1, 1, pad, pad);
        float[] image = TestData.Uniform(g.InputSize, 1), weights = TestData.Uniform(cout * cin * 9, 2), bias = TestData.Uniform(cout, 3);
        (double[] expected, double[] scale) = Direct(image, g, weights, cout, bias);
        float[] actual = new float[expected.Length];
        WinogradF32.ForwardScalar(image, g, weights, cout, bias, actual);
        AssertClose("scalar", expected, scale, actual);
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Every_variant_matches_the_direct_convolution_and_the_scalar_reference(int cin, int cout, int h, int w, int pad)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        var g = new ConvGeometry(cin, h, w, 3, 3, 1, 1, pad, pad);
        Assert.True(WinogradF32.Supports(g));
        float[] image = TestData.Uniform(g.InputSize, 4), weights = TestData.Uniform(cout * cin * 9, 5), bias = TestData.Uniform(cout, 6);
        (double[] expected, double[] scale) = Direct(image, g, weights, cout, bias);
        float[] reference = new float[expected.Length];
        WinogradF32.ForwardScalar(image, g, weights, cout, bias, reference);
        float[] filters = new float[WinogradF32.TransformedFiltersLength(cout, cin)];
        WinogradF32.TransformFilters(weights, cout, cin, flipTranspose: false, filters, new float[WinogradF32.FilterScratchLength(cout, cin)]);
        float[] padded = new float[WinogradF32.PaddedLength(g)], scratch = TestData.Uniform(WinogradF32.ChunkScratchLength(cin, cout), 7);
        Assert.NotEmpty(WinogradF32.SupportedVariants);
        foreach (KernelVariant variant in WinogradF32.SupportedVariants)
        {
            float[] actual = TestData.Uniform(expected.Length, 8);
            WinogradF32.Forward(image, g, filters, cout, bias, relu: false, actual, padded, scratch, variant);
            AssertClose($"{variant} vs direct", expected, scale, actual);
            for (int i = 0; i < actual.Length; i++)
            {
                Assert.True(Math.Abs(actual[i] - reference[i]) <= 2 * RelativeTolerance * scale[i], $"{variant} vs scalar [{i}]: {actual[i]} vs {reference[i]}");
            }
            float[] relu = new float[expected.Length];
            WinogradF32.Forward(image, g, filters, cout, bias, relu: true, relu, padded, scratch, variant);
            Assert.Equal(actual.Select(v => MathF.Max(v, 0f)).ToArray(), relu);
        }
    }

    [Theory]
    [InlineData(17, 3, 5, 7, 1)]
    [InlineData(64, 32, 32, 32, 1)]
    [InlineData(3, 4, 6, 9, 0)]
    [InlineData(3, 4, 6, 9, 2)]
    public void Flipped_transposed_filters_give_the_input_gradient(int cin, int cout, int h, int w, int pad)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        // The convolution x [cin, h, w] -> y [cout, oh, ow]; its input gradient dx = conv(dy, rot180(W)^T) with padding 2 - pad.
        var g = new ConvGeometry(cin, h, w, 3, 3, 1, 1, pad, pad);
        float[] weights = TestData.Uniform(cout * cin * 9, 9), dy = TestData.Uniform(cout * g.ColumnCols, 10);
        var dx = new double[g.InputSize];
        var scale = new double[g.InputSize];
        for (int o = 0; o < cout; o++)
        {
            for (int r = 0; r < g.OutHeight; r++)
            {
                for (int q = 0; q < g.OutWidth; q++)
                {
                    for (int c = 0; c < cin; c++)
                    {
                        for (int i = 0; i < 3; i++)
                        {
                            for (int j = 0; j < 3; j++)
                            {
                                int hh = r + i - pad, ww = q + j - pad;
                                if (hh >= 0 && hh < h && ww >= 0 && ww < w)
                                {
                                    double p = (double)dy[(o * g.OutHeight + r) * g.OutWidth + q] * weights[((o * cin + c) * 3 + i) * 3 + j];
                                    dx[(c * h + hh) * w + ww] += p;
                                    scale[(c * h + hh) * w + ww] += Math.Abs(p);
                                }
                            }
                        }
                    }
                }
            }
        }
        var back = new ConvGeometry(cout, g.OutHeight, g.OutWidth, 3, 3, 1, 1, 2 - pad, 2 - pad);
        Assert.Equal((h, w), (back.OutHeight, back.OutWidth));
        float[] filters = new float[WinogradF32.TransformedFiltersLength(cin, cout)];
        WinogradF32.TransformFilters(weights, cout, cin, flipTranspose: true, filters, new float[WinogradF32.FilterScratchLength(cin, cout)]);
        float[] padded = new float[WinogradF32.PaddedLength(back)], scratch = new float[WinogradF32.ChunkScratchLength(cout, cin)];
        foreach (KernelVariant variant in WinogradF32.SupportedVariants)
        {
            float[] actual = new float[g.InputSize];
            WinogradF32.Forward(dy, back, filters, cin, [], relu: false, actual, padded, scratch, variant);
            AssertClose($"{variant} dx", dx, scale, actual);
        }
    }

    [Fact]
    public void Chunks_computed_separately_or_in_any_order_give_identical_bits()
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        var g = new ConvGeometry(6, 30, 41, 3, 3, 1, 1, 1, 1);   // 8 x 11 = 88 tiles: 3 chunks, the last partial
        const int cout = 7;
        Assert.Equal(3, WinogradF32.ChunkCount(g));
        float[] image = TestData.Uniform(g.InputSize, 11), weights = TestData.Uniform(cout * 6 * 9, 12), bias = TestData.Uniform(cout, 13);
        float[] filters = new float[WinogradF32.TransformedFiltersLength(cout, 6)];
        WinogradF32.TransformFilters(weights, cout, 6, false, filters, new float[WinogradF32.FilterScratchLength(cout, 6)]);
        float[] padded = new float[WinogradF32.PaddedLength(g)], scratch = new float[WinogradF32.ChunkScratchLength(6, cout)];
        foreach (KernelVariant variant in WinogradF32.SupportedVariants)
        {
            float[] whole = new float[cout * g.ColumnCols], split = new float[whole.Length];
            WinogradF32.Forward(image, g, filters, cout, bias, false, whole, padded, scratch, variant);
            WinogradF32.Compute(g, filters, cout, bias, false, padded, split, scratch, 2, 1, variant);
            WinogradF32.Compute(g, filters, cout, bias, false, padded, split, TestData.Uniform(scratch.Length, 14), 0, 2, variant);
            Assert.Equal(whole, split);
        }
    }
}
