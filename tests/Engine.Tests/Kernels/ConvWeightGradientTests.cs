using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;
using Engine.Tests.Layers;

namespace Engine.Tests.Kernels;

public class ConvWeightGradientTests
{
    public static TheoryData<int, int, int, int, int, int> Geometries() => new()
    {
        // channels in, out, height, width, kernel, padding (stride 1; output width a multiple of 8 or 16 for the vector variants)
        { 1, 1, 1, 8, 1, 0 },
        { 3, 5, 5, 16, 3, 1 },      // 27 taps: an edge tap tile for both tile widths (6 and 4); 5 rows: an edge row tile
        { 2, 7, 9, 32, 5, 2 },
        { 4, 13, 3, 17, 2, 0 },     // output width 16 from an odd input width, no padding
        { 1, 32, 32, 32, 3, 1 },    // conv1's shape (9 taps)
        { 32, 64, 8, 32, 3, 1 },    // conv2's channels, fewer rows
        { 5, 3, 4, 24, 3, 1 },      // width 24: the AVX2 variant only
    };

    // dW[co, r] = sum over n and pixels of dy[n, co, p] col(x[n])[r, p], summed in double from im2col: the definition.
    // Also returns sum |dy col| per element: float summation of n terms errs by at most about n eps times that
    // (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 4.2), the bound the tests use.
    private static (double[] DW, double[] Magnitude) Definition(ConvGeometry g, int cout, float[] images, float[] dy, int batch)
    {
        int k = g.ColumnRows, pixels = g.ColumnCols;
        var col = new float[k * pixels];
        var dW = new double[cout * k];
        var magnitude = new double[cout * k];
        for (int n = 0; n < batch; n++)
        {
            Im2ColF32.Im2ColScalar(images.AsSpan(n * g.InputSize, g.InputSize), g, col);
            for (int co = 0; co < cout; co++)
            {
                for (int r = 0; r < k; r++)
                {
                    double sum = 0, abs = 0;
                    for (int p = 0; p < pixels; p++)
                    {
                        double term = (double)dy[(n * cout + co) * pixels + p] * col[r * pixels + p];
                        sum += term;
                        abs += Math.Abs(term);
                    }
                    dW[co * k + r] += sum;
                    magnitude[co * k + r] += abs;
                }
            }
        }
        return (dW, magnitude);
    }

    private static float[] Run(ConvGeometry g, int cout, float[] images, float[] dy, int batch, KernelVariant variant, int rowSplit)
    {
        int rows = ConvWeightGradientF32.PaddedRows(cout, variant), tile = ConvWeightGradientF32.RowTileOf(variant);
        var accumulator = TestData.Uniform(ConvWeightGradientF32.AccumulatorLength(g, cout, variant), 77);
        Array.Clear(accumulator);
        var offsets = new int[ConvWeightGradientF32.PaddedTaps(g, variant)];
        ConvWeightGradientF32.TapOffsets(g, variant, offsets);
        // Garbage in the padded buffer: the first image must clear its border.
        var padded = TestData.Uniform(ImplicitConvF32.PaddedLength(g), 78);
        int split = Math.Min(rows, (rowSplit + tile - 1) / tile * tile);
        for (int n = 0; n < batch; n++)
        {
            ConvWeightGradientF32.PadImage(images.AsSpan(n * g.InputSize, g.InputSize), g, padded, clearBorder: n == 0);
            float[] sample = dy[(n * cout * g.ColumnCols)..((n + 1) * cout * g.ColumnCols)];
            ConvWeightGradientF32.Accumulate(g, sample, cout, padded, offsets, split, rows - split, accumulator, variant);
            ConvWeightGradientF32.Accumulate(g, sample, cout, padded, offsets, 0, split, accumulator, variant);
        }
        var dW = new float[cout * g.ColumnRows];
        ConvWeightGradientF32.Reduce(g, cout, accumulator, 0, rows, dW, variant);
        return dW;
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Every_variant_matches_the_definition_and_the_scalar_twin(int cin, int cout, int h, int w, int k, int pad)
    {
        var g = new ConvGeometry(cin, h, w, k, k, 1, 1, pad, pad);
        const int batch = 3;
        float[] images = TestData.Uniform(batch * g.InputSize, 1), dy = TestData.Uniform(batch * cout * g.ColumnCols, 2);
        (double[] definition, double[] magnitude) = Definition(g, cout, images, dy, batch);
        const double eps = 1.2e-7;   // float unit roundoff 2^-24, rounded up
        float[] scalar = Run(g, cout, images, dy, batch, KernelVariant.Scalar, rowSplit: 1);
        int tested = 0;
        foreach (KernelVariant variant in ConvWeightGradientF32.SupportedVariants)
        {
            if (!ConvWeightGradientF32.Supports(g, variant))
            {
                Assert.True(g.OutWidth % ConvWeightGradientF32.LanesOf(variant) != 0, $"{variant} refused {g}");
                continue;
            }
            // Rows split at an arbitrary tile boundary and run in the other order: the same values, bit for bit, as one run.
            float[] actual = Run(g, cout, images, dy, batch, variant, rowSplit: cout / 2);
            float[] whole = Run(g, cout, images, dy, batch, variant, rowSplit: 0);
            Assert.Equal(whole, actual);
            // Each lane sums batch x pixels / lanes products in float, then the lanes are added: that many roundings.
            int lanes = ConvWeightGradientF32.LanesOf(variant), roundings = batch * g.ColumnCols / lanes + lanes + 2;
            for (int i = 0; i < definition.Length; i++)
            {
                double bound = roundings * eps * magnitude[i];
                Assert.True(Math.Abs(definition[i] - actual[i]) <= bound, $"{variant} dW[{i}]: {definition[i]} vs {actual[i]}");
                Assert.True(Math.Abs(scalar[i] - actual[i]) <= bound + (batch + 2) * eps * magnitude[i],
                    $"{variant} against the scalar twin, dW[{i}]: {scalar[i]} vs {actual[i]}");
            }
            tested++;
        }
        for (int i = 0; i < definition.Length; i++)
        {
            // The twin sums each image in double and adds the batch's sums in float: batch + 1 roundings.
            Assert.True(Math.Abs(definition[i] - scalar[i]) <= (batch + 2) * eps * magnitude[i], $"scalar dW[{i}]: {definition[i]} vs {scalar[i]}");
        }
        Assert.True(tested >= 1);
    }

    [Fact]
    public void Strided_convolutions_and_odd_widths_are_refused_by_the_vector_variants()
    {
        var strided = new ConvGeometry(2, 16, 32, 3, 3, 2, 2, 1, 1);
        var odd = new ConvGeometry(2, 5, 7, 3, 3, 1, 1, 1, 1);
        foreach (KernelVariant variant in ConvWeightGradientF32.SupportedVariants)
        {
            Assert.False(ConvWeightGradientF32.Supports(strided, variant));
        }
        Assert.Equal(KernelVariant.Scalar, ConvWeightGradientF32.VariantFor(odd));
        Assert.Throws<PlatformNotSupportedException>(() => ConvWeightGradientF32.Accumulate(odd, new float[1000], 1, new float[1000],
            new int[100], 0, 1, new float[1000], KernelVariant.Avx2Fma));
    }

    [Theory]
    [InlineData(3, 5, 3, 1, 6, 16)]
    [InlineData(2, 7, 5, 2, 3, 32)]
    [InlineData(4, 3, 1, 0, 2, 8)]
    public void Conv2d_implicit_weight_gradient_matches_finite_differences_and_the_im2col_path(int cin, int cout, int k, int pad, int h, int w)
    {
        var conv = new Conv2d(cin, cout, k, 1, pad);
        conv.Initialize(new SeededRandom(7));
        FloatTensor x = TestData.FloatTensor(8, 3, cin, h, w);
        GradientCheck.Layer(conv, x, seed: 9);

        // The same layer through im2col + GEMM: the same dW and db within rounding, the same dx exactly (untouched code).
        FloatTensor dy = TestData.FloatTensor(10, [.. conv.OutputShape(x.Shape)]);
        Zero(conv);
        conv.Forward(x);
        float[] dx = conv.Backward(dy)!.Data.ToArray();
        float[] dW = conv.Weight.Gradient.Data.ToArray(), db = conv.Bias.Gradient.Data.ToArray();
        Zero(conv);
        conv.UseIm2ColWeightGradient = true;
        conv.Forward(x);
        Assert.Equal(conv.Backward(dy)!.Data.ToArray(), dx);
        AssertClose(conv.Weight.Gradient.Data.ToArray(), dW);
        AssertClose(conv.Bias.Gradient.Data.ToArray(), db);
    }

    [Fact]
    public void Conv2d_weight_gradient_is_the_same_for_every_thread_count_and_accumulates()
    {
        float[]? first = null, firstBias = null;
        foreach (int threads in new[] { 1, 2, 3, 4 })
        {
            var conv = new Conv2d(3, 7, 3, 1, 1) { Threads = threads, ComputeInputGradient = false };
            conv.Initialize(new SeededRandom(1));
            FloatTensor x = TestData.FloatTensor(2, 5, 3, 4, 16);
            FloatTensor dy = TestData.FloatTensor(3, 5, 7, 4, 16);
            Zero(conv);
            conv.Forward(x);
            Assert.Null(conv.Backward(dy));
            float[] once = conv.Weight.Gradient.Data.ToArray();
            conv.Backward(dy);
            // Backward adds (+=) into the gradients: twice the same batch is twice the gradient.
            for (int i = 0; i < once.Length; i++)
            {
                Assert.Equal(once[i] + once[i], conv.Weight.Gradient.Data[i]);
            }
            Zero(conv);
            conv.Backward(dy);
            first ??= conv.Weight.Gradient.Data.ToArray();
            firstBias ??= conv.Bias.Gradient.Data.ToArray();
            Assert.Equal(first, conv.Weight.Gradient.Data.ToArray());
            Assert.Equal(firstBias, conv.Bias.Gradient.Data.ToArray());
        }
    }

    private static void Zero(Layer layer)
    {
        foreach (Parameter p in layer.Parameters)
        {
            p.ZeroGradient();
        }
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= 1e-4f * Math.Max(1f, MathF.Abs(expected[i])), $"[{i}] {expected[i]} vs {actual[i]}");
        }
    }
}
