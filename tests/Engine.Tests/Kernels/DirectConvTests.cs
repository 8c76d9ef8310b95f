using System.Runtime.InteropServices;
using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class DirectConvTests
{
    public static TheoryData<int, int, int, int, int, int> Geometries() => new()
    {
        // channels in, out, height, width, kernel, padding (stride 1; widths below, between and above the vector widths)
        { 1, 1, 1, 1, 1, 0 },
        { 1, 3, 5, 7, 3, 1 },
        { 1, 5, 4, 17, 3, 1 },
        { 2, 9, 6, 33, 3, 1 },
        { 3, 7, 5, 50, 3, 0 },
        { 1, 6, 9, 16, 5, 2 },
        { 1, 32, 32, 32, 3, 1 },   // conv1's shape
        { 3, 4, 7, 64, 3, 1 },     // depth 27, the largest conv1-like filter of three channels
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Every_variant_equals_the_scalar_twin_bit_for_bit_and_the_reference_closely(int cin, int cout, int h, int w, int k, int pad)
    {
        var g = new ConvGeometry(cin, h, w, k, k, 1, 1, pad, pad);
        Assert.True(DirectConvF32.Supports(g));
        float[] image = TestData.Uniform(g.InputSize, 31), weights = TestData.Uniform(cout * g.ColumnRows, 32);
        float[] reference = Reference(image, g, weights, cout);
        float[] padded = new float[DirectConvF32.PaddedLength(g)];
        DirectConvF32.Pad(image, g, padded);
        float[] scalar = new float[cout * g.ColumnCols];
        DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, scalar, g.ColumnCols, KernelVariant.Scalar);
        for (int i = 0; i < reference.Length; i++)
        {
            Assert.True(MathF.Abs(reference[i] - scalar[i]) <= 4e-7f * (g.ColumnRows + 2) * Math.Max(1f, MathF.Abs(reference[i])),
                $"scalar [{i}] {reference[i]} vs {scalar[i]}");
        }
        foreach (KernelVariant variant in DirectConvF32.SupportedVariants)
        {
            float[] actual = TestData.Uniform(scalar.Length, 33);
            DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, actual, g.ColumnCols, variant);
            Assert.True(BitsEqual(scalar, actual), $"{variant} differs from the scalar twin");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_epilogue_in_registers_equals_the_bias_add_and_relu_after_it_bit_for_bit(bool relu)
    {
        var g = new ConvGeometry(1, 9, 45, 3, 3, 1, 1, 1, 1);   // widths of 45: 32 + 8 + 5 columns, every path
        const int cout = 7;
        float[] image = TestData.Uniform(g.InputSize, 38), weights = TestData.Uniform(cout * g.ColumnRows, 39), bias = TestData.Uniform(cout, 40);
        float[] padded = new float[DirectConvF32.PaddedLength(g)];
        DirectConvF32.Pad(image, g, padded);
        foreach (KernelVariant variant in DirectConvF32.SupportedVariants)
        {
            float[] expected = new float[cout * g.ColumnCols], actual = new float[expected.Length];
            DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, expected, g.ColumnCols, variant);
            for (int c = 0; c < cout; c++)
            {
                Span<float> plane = expected.AsSpan(c * g.ColumnCols, g.ColumnCols);
                System.Numerics.Tensors.TensorPrimitives.Add(plane, bias[c], plane);
                if (relu)
                {
                    ReluF32.Forward(plane, plane);
                }
            }
            DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, actual, g.ColumnCols, variant, bias, relu);
            Assert.True(BitsEqual(expected, actual), $"{variant}");
            Assert.Contains(actual, v => relu ? v == 0f : v < 0f);   // the ReLU (or its absence) was exercised
        }
    }

    [Fact]
    public void Row_ranges_into_a_strided_band_give_exactly_the_whole_computation()
    {
        var g = new ConvGeometry(2, 7, 21, 3, 3, 1, 1, 1, 1);
        const int cout = 6;
        float[] image = TestData.Uniform(g.InputSize, 34), weights = TestData.Uniform(cout * g.ColumnRows, 35);
        float[] padded = new float[DirectConvF32.PaddedLength(g)];
        DirectConvF32.Pad(image, g, padded);
        float[] whole = new float[cout * g.ColumnCols];
        DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, whole, g.ColumnCols, DirectConvF32.Best);
        const int first = 2, rows = 3, stride = rows * 21 + 5;
        float[] band = new float[cout * stride];
        DirectConvF32.Compute(g, weights, cout, padded, first, rows, band, stride, DirectConvF32.Best);
        for (int c = 0; c < cout; c++)
        {
            Assert.True(BitsEqual(whole.AsSpan(c * g.ColumnCols + first * 21, rows * 21), band.AsSpan(c * stride, rows * 21)), $"channel {c}");
        }
    }

    [Theory]
    [InlineData(5, 9, 45)]    // 32 + 8 + 5 columns: every path of every variant
    [InlineData(32, 32, 32)]  // conv1 into conv2's Winograd grid (row stride 36)
    public void Rows_written_with_a_row_stride_equal_the_dense_rows_and_leave_the_gaps_alone(int cout, int h, int w)
    {
        // The chained inference step writes conv1's rows into Winograd's padded grid: rows rowStride apart, channels
        // further apart, with bias and ReLU; each variant must write the dense result's values and nothing in between.
        var g = new ConvGeometry(1, h, w, 3, 3, 1, 1, 1, 1);
        float[] image = TestData.Uniform(g.InputSize, 41), weights = TestData.Uniform(cout * g.ColumnRows, 42), bias = TestData.Uniform(cout, 43);
        float[] padded = new float[DirectConvF32.PaddedLength(g)];
        DirectConvF32.Pad(image, g, padded);
        int rowStride = w + 4, channelStride = (h + 2) * rowStride;
        float[] dense = new float[cout * g.ColumnCols];
        DirectConvF32.Compute(g, weights, cout, padded, 0, h, dense, g.ColumnCols, KernelVariant.Scalar, bias, relu: true);
        foreach (KernelVariant variant in DirectConvF32.SupportedVariants)
        {
            float[] strided = new float[cout * channelStride];
            Array.Fill(strided, float.NaN);
            DirectConvF32.Compute(g, weights, cout, padded, 0, h, strided.AsSpan(rowStride + 1), channelStride, variant, bias, relu: true, rowStride);
            for (int c = 0; c < cout; c++)
            {
                for (int r = 0; r < h + 2; r++)
                {
                    for (int x = 0; x < rowStride; x++)
                    {
                        float value = strided[c * channelStride + r * rowStride + x];
                        bool inside = r >= 1 && r <= h && x >= 1 && x <= w;
                        if (inside)
                        {
                            Assert.True(BitConverter.SingleToInt32Bits(dense[(c * h + r - 1) * w + x - 1]) == BitConverter.SingleToInt32Bits(value),
                                $"{variant}, channel {c}, row {r}, column {x}");
                        }
                        else
                        {
                            Assert.True(float.IsNaN(value), $"{variant} wrote a gap: channel {c}, row {r}, column {x}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Conv1_equals_the_implicit_gemm_bit_for_bit()
    {
        // The same FMA chain per output as the packed micro-kernel: swapping the kernels changes no result.
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the implicit convolution needs AVX2 + FMA, which this CPU lacks.");
        foreach (var g in new[] { new ConvGeometry(1, 32, 32, 3, 3, 1, 1, 1, 1), new ConvGeometry(3, 5, 48, 3, 3, 1, 1, 1, 1) })
        {
            const int cout = 13;
            float[] image = TestData.Uniform(g.InputSize, 36), weights = TestData.Uniform(cout * g.ColumnRows, 37);
            float[] packed = new float[GemmF32.PackedRowsLength(cout, g.ColumnRows)];
            GemmF32.PackRows(weights, g.ColumnRows, cout, g.ColumnRows, packed);
            float[] implicitPadded = new float[ImplicitConvF32.PaddedLength(g)];
            int[] offsets = new int[g.ColumnRows];
            float[] expected = new float[cout * g.ColumnCols];
            ImplicitConvF32.Forward(image, g, packed, cout, expected, implicitPadded, offsets);
            float[] padded = new float[DirectConvF32.PaddedLength(g)];
            DirectConvF32.Pad(image, g, padded);
            foreach (KernelVariant variant in DirectConvF32.SupportedVariants)
            {
                float[] actual = new float[expected.Length];
                DirectConvF32.Compute(g, weights, cout, padded, 0, g.OutHeight, actual, g.ColumnCols, variant);
                Assert.True(BitsEqual(expected, actual), $"{variant} on {g}");
            }
        }
    }

    // The definition in double: y[c, oh, ow] = sum over (ci, i, j) of w[c, ci, i, j] x[ci, oh + i - p, ow + j - p].
    private static float[] Reference(float[] image, ConvGeometry g, float[] weights, int cout)
    {
        float[] y = new float[cout * g.ColumnCols];
        for (int c = 0; c < cout; c++)
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                for (int ow = 0; ow < g.OutWidth; ow++)
                {
                    double sum = 0;
                    for (int ci = 0; ci < g.Channels; ci++)
                    {
                        for (int i = 0; i < g.KernelHeight; i++)
                        {
                            for (int j = 0; j < g.KernelWidth; j++)
                            {
                                int h = oh + i - g.PadHeight, x = ow + j - g.PadWidth;
                                if (h >= 0 && h < g.Height && x >= 0 && x < g.Width)
                                {
                                    sum += (double)weights[((c * g.Channels + ci) * g.KernelHeight + i) * g.KernelWidth + j] * image[(ci * g.Height + h) * g.Width + x];
                                }
                            }
                        }
                    }
                    y[(c * g.OutHeight + oh) * g.OutWidth + ow] = (float)sum;
                }
            }
        }
        return y;
    }

    private static bool BitsEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        MemoryMarshal.Cast<float, int>(a).SequenceEqual(MemoryMarshal.Cast<float, int>(b));
}
