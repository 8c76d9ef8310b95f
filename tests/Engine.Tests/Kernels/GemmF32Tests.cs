using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class GemmF32Tests
{
    public static TheoryData<KernelVariant> FastVariants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in GemmF32.SupportedVariants.Where(v => v != KernelVariant.Scalar))
        {
            data.Add(v);
        }
        return data;
    }

    private static readonly int[] OddSizes = [1, 7, 9, 17, 33];

    [Theory]
    [MemberData(nameof(FastVariants))]
    public void Every_variant_matches_the_scalar_reference_on_odd_shapes_and_all_transposes(KernelVariant variant)
    {
        ulong seed = 1;
        foreach (int m in OddSizes)
        foreach (int n in OddSizes)
        foreach (int k in OddSizes)
        foreach (bool ta in new[] { false, true })
        foreach (bool tb in new[] { false, true })
        {
            CompareWithReference(variant, ta, tb, m, n, k, accumulate: (m + n + k) % 2 == 0, seed++);
        }
    }

    [Theory]
    [MemberData(nameof(FastVariants))]
    public void Every_variant_matches_across_cache_block_boundaries(KernelVariant variant)
    {
        // Sizes that cross MC = 96, KC = 256 and NC = 2048 with ragged remainders.
        CompareWithReference(variant, false, false, 97, 2051, 259, accumulate: false, 11);
        CompareWithReference(variant, true, true, 193, 35, 513, accumulate: true, 12);
        CompareWithReference(variant, false, true, 64, 288, 1024, accumulate: true, 13);
        CompareWithReference(variant, true, false, 288, 1024, 64, accumulate: false, 14);
    }

    [Theory]
    [MemberData(nameof(FastVariants))]
    public void Leading_dimensions_larger_than_the_matrix_are_respected(KernelVariant variant)
    {
        const int m = 9, n = 17, k = 7, lda = 12, ldb = 20, ldc = 19;
        float[] a = TestData.Uniform(m * lda, 1), b = TestData.Uniform(k * ldb, 2);
        float[] expected = TestData.Uniform(m * ldc, 3), actual = (float[])expected.Clone();
        GemmF32.Multiply(false, false, m, n, k, a, lda, b, ldb, expected, ldc, accumulate: true, KernelVariant.Scalar);
        GemmF32.Multiply(false, false, m, n, k, a, lda, b, ldb, actual, ldc, accumulate: true, variant);
        AssertClose(expected, actual, k);
        // Padding columns of C beyond n are untouched.
        float[] original = TestData.Uniform(m * ldc, 3);
        for (int i = 0; i < m; i++)
        {
            for (int j = n; j < ldc; j++)
            {
                Assert.Equal(original[i * ldc + j], actual[i * ldc + j]);
            }
        }
    }

    [Fact]
    public void Zero_sizes_are_legal()
    {
        foreach (KernelVariant v in GemmF32.SupportedVariants)
        {
            float[] c = [5f, 5f];
            GemmF32.Multiply(false, false, 1, 2, 0, [], 0, [], 2, c, 2, accumulate: true, v);
            Assert.Equal([5f, 5f], c);
            GemmF32.Multiply(false, false, 1, 2, 0, [], 0, [], 2, c, 2, accumulate: false, v);
            Assert.Equal([0f, 0f], c);
            GemmF32.Multiply(false, false, 0, 2, 3, [], 3, new float[6], 2, [], 2, accumulate: false, v);
        }
    }

    [Fact]
    public void Parallel_multiply_matches_the_reference_when_split_by_rows_or_columns()
    {
        foreach (int threads in new[] { 1, 2, 3 })
        {
            foreach ((int m, int n, int k) in new[] { (64, 10, 128), (10, 130, 33), (97, 97, 9), (1, 1, 1) })
            {
                float[] a = TestData.Uniform(m * k, 5), b = TestData.Uniform(k * n, 6);
                float[] expected = new float[m * n], actual = new float[m * n];
                GemmF32.Multiply(false, true, m, n, k, a, k, b, k, expected, n, false, KernelVariant.Scalar);
                GemmF32.MultiplyParallel(threads, false, true, m, n, k, a, k, b, k, actual, n, false);
                AssertClose(expected, actual, k);
            }
        }
    }

    [Fact]
    public void Too_small_spans_are_rejected_with_the_matrix_named()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            GemmF32.Multiply(false, false, 2, 2, 2, new float[3], 2, new float[4], 2, new float[4], 2, false, KernelVariant.Scalar));
        Assert.Contains("matrix A", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            GemmF32.Multiply(false, false, 2, 2, 2, new float[4], 2, new float[4], 1, new float[4], 2, false, KernelVariant.Scalar));
        Assert.Contains("matrix B", e.Message);
    }

    private static void CompareWithReference(KernelVariant variant, bool ta, bool tb, int m, int n, int k, bool accumulate, ulong seed)
    {
        float[] a = TestData.Uniform(m * k, seed * 3), b = TestData.Uniform(k * n, seed * 3 + 1);
        float[] expected = TestData.Uniform(m * n, seed * 3 + 2), actual = (float[])expected.Clone();
        int lda = ta ? m : k, ldb = tb ? k : n;
        GemmF32.Multiply(ta, tb, m, n, k, a, lda, b, ldb, expected, n, accumulate, KernelVariant.Scalar);
        GemmF32.Multiply(ta, tb, m, n, k, a, lda, b, ldb, actual, n, accumulate, variant);
        AssertClose(expected, actual, k);
    }

    /// <summary>
    /// Tolerance: float summation of k products of values in [-1, 1] errs by at most about k * 2^-24 times the sum of
    /// magnitudes; 4e-7 * (k + 1) (plus 1 for the accumulated C) bounds it with margin.
    /// </summary>
    private static void AssertClose(float[] expected, float[] actual, int k)
    {
        float tolerance = 4e-7f * (k + 2);
        for (int i = 0; i < expected.Length; i++)
        {
            float diff = MathF.Abs(expected[i] - actual[i]);
            Assert.True(diff <= tolerance * Math.Max(1f, MathF.Abs(expected[i])),
                $"element {i}: expected {expected[i]}, got {actual[i]} (diff {diff}, tolerance {tolerance})");
        }
    }
}

public class PrepackedGemmTests
{
    [Fact]
    public void Prepacked_B_matches_the_reference_on_odd_shapes()
    {
        if (!GemmF32.HasAvx2Fma)
        {
            Assert.Throws<PlatformNotSupportedException>(() => GemmF32.MultiplyPrepacked(1, 1, 1, new float[6], new float[16], new float[1], 1, false));
            return;
        }
        ulong seed = 1;
        foreach (int m in new[] { 1, 7, 9, 33, 97, 193 })
        foreach (int n in new[] { 1, 7, 16, 17, 33 })
        foreach (int k in new[] { 1, 9, 17, 259 })
        {
            float[] a = TestData.Uniform(m * k, seed++), b = TestData.Uniform(k * n, seed++);
            float[] expected = TestData.Uniform(m * n, seed), actual = (float[])expected.Clone();
            bool accumulate = (m + n) % 2 == 0;
            var panels = new float[GemmF32.PanelsLength(k, n)];
            GemmF32.PackPanels(b, n, k, n, panels);
            var rows = new float[GemmF32.PackedRowsLength(m, k)];
            GemmF32.PackRows(a, k, m, k, rows);
            GemmF32.Multiply(false, false, m, n, k, a, k, b, n, expected, n, accumulate, KernelVariant.Scalar);
            GemmF32.MultiplyPrepacked(m, n, k, rows, panels, actual, n, accumulate);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(MathF.Abs(expected[i] - actual[i]) <= 4e-7f * (k + 2) * Math.Max(1f, MathF.Abs(expected[i])), $"m={m} n={n} k={k} [{i}]");
            }
        }
    }

    [Theory]
    [InlineData(1, 4, 4, 3, 1, 1)]
    [InlineData(3, 7, 9, 3, 2, 1)]
    [InlineData(2, 9, 7, 5, 1, 2)]
    [InlineData(32, 32, 32, 3, 1, 1)]
    [InlineData(2, 5, 20, 3, 1, 1)]
    [InlineData(1, 5, 40, 5, 1, 0)]
    public void Im2col_panels_equal_im2col_then_packing(int c, int h, int w, int k, int s, int p)
    {
        var g = new ConvGeometry(c, h, w, k, k, s, s, p, p);
        float[] image = TestData.Uniform(g.InputSize, 4);
        float[] col = new float[g.ColumnRows * g.ColumnCols];
        Im2ColF32.Im2Col(image, g, col);
        float[] expected = new float[GemmF32.PanelsLength(g.ColumnRows, g.ColumnCols)];
        float[] actual = TestData.Uniform(expected.Length, 5);
        GemmF32.PackPanels(col, g.ColumnCols, g.ColumnRows, g.ColumnCols, expected);
        Im2ColF32.Im2ColPanels(image, g, actual);
        Assert.Equal(expected, actual);

        // A chunk of pixels gives exactly the panels of those columns.
        int first = 16, count = Math.Min(37, g.ColumnCols - first);
        if (count > 0)
        {
            float[] chunkExpected = new float[GemmF32.PanelsLength(g.ColumnRows, count)];
            float[] chunkActual = new float[chunkExpected.Length];
            GemmF32.PackPanels(col.AsSpan(first), g.ColumnCols, g.ColumnRows, count, chunkExpected);
            Im2ColF32.Im2ColPanels(image, g, first, count, chunkActual);
            Assert.Equal(chunkExpected, chunkActual);
        }
    }
}
