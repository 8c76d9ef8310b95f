using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;
using Engine.Tests.Layers;

namespace Engine.Tests.Kernels;

public class ImplicitConvTests
{
    public static TheoryData<int, int, int, int, int, int> Geometries() => new()
    {
        // channels in, out, height, width, kernel, padding (stride 1; output width a multiple of 16)
        { 1, 1, 1, 16, 1, 0 },
        { 3, 5, 5, 16, 3, 1 },
        { 2, 7, 9, 32, 5, 2 },
        { 4, 13, 3, 17, 2, 0 },
        { 32, 64, 32, 32, 3, 1 },
        { 32, 97, 8, 16, 3, 1 },
        { 5, 13, 3, 64, 3, 1 },    // 32-multiples: the AVX-512 variant too, with an edge row block (13 = 2 x 6 + 1)
        { 1, 32, 32, 32, 3, 1 },   // conv1's shape
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Implicit_convolution_matches_im2col_and_the_scalar_gemm(int cin, int cout, int h, int w, int k, int pad)
    {
        // Without AVX2 + FMA there is no implicit kernel to test: skipped (reported as such), not passed.
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the implicit convolution needs AVX2 + FMA, which this CPU lacks.");
        var g = new ConvGeometry(cin, h, w, k, k, 1, 1, pad, pad);
        Assert.True(ImplicitConvF32.Supports(g), "supported hardware and shape (output width a multiple of 16) were refused");
        float[] image = TestData.Uniform(g.InputSize, 1), weights = TestData.Uniform(cout * g.ColumnRows, 2);
        float[] col = new float[g.ColumnRows * g.ColumnCols];
        Im2ColF32.Im2ColScalar(image, g, col);
        float[] expected = new float[cout * g.ColumnCols];
        GemmF32.Multiply(false, false, cout, g.ColumnCols, g.ColumnRows, weights, g.ColumnRows, col, g.ColumnCols, expected, g.ColumnCols, false, KernelVariant.Scalar);

        float[] packed = new float[GemmF32.PackedRowsLength(cout, g.ColumnRows)];
        GemmF32.PackRows(weights, g.ColumnRows, cout, g.ColumnRows, packed);
        float[] padded = new float[ImplicitConvF32.PaddedLength(g)];
        int[] offsets = new int[g.ColumnRows];
        ImplicitConvF32.Prepare(image, g, padded, offsets);
        int tested = 0;
        foreach (KernelVariant variant in ImplicitConvF32.SupportedVariants)
        {
            int width = ImplicitConvF32.PanelWidthOf(variant);
            if (g.OutWidth % width != 0)
            {
                continue;
            }
            float[] actual = TestData.Uniform(expected.Length, 3);
            ImplicitConvF32.Compute(g, packed, cout, actual, padded, offsets, 0, g.ColumnCols / width, variant);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(MathF.Abs(expected[i] - actual[i]) <= 4e-7f * (g.ColumnRows + 2) * Math.Max(1f, MathF.Abs(expected[i])),
                    $"{variant} [{i}] {expected[i]} vs {actual[i]}");
            }
            tested++;
        }
        Assert.True(tested >= 1);
    }

    [Fact]
    public void Split_panel_ranges_give_exactly_the_whole_computation_and_batch_one_matches_a_batch()
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the implicit convolution needs AVX2 + FMA, which this CPU lacks.");
        var g = new ConvGeometry(3, 4, 64, 3, 3, 1, 1, 1, 1);
        Assert.True(ImplicitConvF32.Supports(g));
        const int cout = 7;
        float[] image = TestData.Uniform(g.InputSize, 11), weights = TestData.Uniform(cout * g.ColumnRows, 12);
        float[] packed = new float[GemmF32.PackedRowsLength(cout, g.ColumnRows)];
        GemmF32.PackRows(weights, g.ColumnRows, cout, g.ColumnRows, packed);
        float[] padded = new float[ImplicitConvF32.PaddedLength(g)];
        int[] offsets = new int[g.ColumnRows];
        float[] whole = new float[cout * g.ColumnCols], split = new float[whole.Length];
        ImplicitConvF32.Forward(image, g, packed, cout, whole, padded, offsets);
        ImplicitConvF32.Prepare(image, g, padded, offsets);
        KernelVariant variant = ImplicitConvF32.VariantFor(g);
        int panels = g.ColumnCols / ImplicitConvF32.PanelWidthOf(variant);
        ImplicitConvF32.Compute(g, packed, cout, split, padded, offsets, 1, panels - 1, variant);
        ImplicitConvF32.Compute(g, packed, cout, split, padded, offsets, 0, 1, variant);
        Assert.Equal(whole, split);

        // The layer at batch 1 on two threads splits panels; at batch 2 it splits samples: the same numbers.
        var conv = new Conv2d(3, cout, 3, 1, 1) { Threads = 2 };
        conv.Initialize(new SeededRandom(13));
        FloatTensor two = TestData.FloatTensor(14, 2, 3, 4, 64);
        float[] batched = conv.Forward(two).Data.ToArray();
        var one = new FloatTensor(1, 3, 4, 64);
        two.Data[..one.Length].CopyTo(one.Data);
        Assert.Equal(batched.AsSpan(0, cout * g.ColumnCols).ToArray(), conv.Forward(one).Data.ToArray());
    }

    [Fact]
    public void Conv2d_on_16_wide_images_takes_the_implicit_path_and_stays_correct()
    {
        var conv = new Conv2d(3, 5, 3, 1, 1) { Threads = 2 };
        conv.Initialize(new SeededRandom(4));
        FloatTensor x = TestData.FloatTensor(5, 4, 3, 6, 16);
        float[] y = conv.Forward(x).Data.ToArray();
        var g = new ConvGeometry(3, 6, 16, 3, 3, 1, 1, 1, 1);
        var col = new float[g.ColumnRows * g.ColumnCols];
        var reference = new float[5 * g.ColumnCols];
        for (int n = 0; n < 4; n++)
        {
            Im2ColF32.Im2ColScalar(x.Data.Slice(n * g.InputSize, g.InputSize), g, col);
            GemmF32.Multiply(false, false, 5, g.ColumnCols, g.ColumnRows, conv.Weight.Value.Data, g.ColumnRows, col, g.ColumnCols, reference, g.ColumnCols, false, KernelVariant.Scalar);
            for (int i = 0; i < reference.Length; i++)
            {
                Assert.Equal(reference[i] + conv.Bias.Value.Data[i / g.ColumnCols], y[n * reference.Length + i], 1e-5f);
            }
        }
        GradientCheck.Layer(conv, x, seed: 6, maxCoordinates: 150);
    }
}
