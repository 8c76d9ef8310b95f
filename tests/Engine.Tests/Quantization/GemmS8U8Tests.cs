using Engine.Kernels;

namespace Engine.Tests.Quantization;

public class GemmS8U8Tests
{
    /// <summary>Random int8 weights A [m, k] and uint8 activations B [k, n]; with <paramref name="extreme"/>, only +-127 and 255.</summary>
    internal static (sbyte[] A, byte[] B) Operands(int m, int n, int k, ulong seed, bool extreme)
    {
        var random = new SeededRandom(seed);
        sbyte[] a = new sbyte[m * k];
        byte[] b = new byte[k * n];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = extreme ? (random.NextInt(2) == 0 ? (sbyte)-127 : (sbyte)127) : (sbyte)(random.NextInt(255) - 127);
        }
        for (int i = 0; i < b.Length; i++)
        {
            b[i] = extreme ? (byte)255 : (byte)random.NextInt(256);
        }
        return (a, b);
    }

    public static TheoryData<KernelVariant> Variants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in GemmS8U8.SupportedVariants.Where(v => v != KernelVariant.Scalar))
        {
            data.Add(v);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Fast_variant_equals_the_scalar_reference_bit_for_bit_on_odd_shapes_and_extremes(KernelVariant variant)
    {
        ulong seed = 1;
        foreach (int m in new[] { 1, 3, 4, 7, 9, 17, 33 })
        foreach (int n in new[] { 1, 7, 9, 16, 17, 33 })
        foreach (int k in new[] { 1, 2, 7, 9, 17, 288 })
        foreach (bool extreme in new[] { false, true })
        {
            (sbyte[] a, byte[] b) = Operands(m, n, k, seed++, extreme);
            int[] expected = new int[m * n], actual = Enumerable.Repeat(-7, m * n).ToArray();
            GemmS8U8.Multiply(m, n, k, a, k, b, n, expected, n, KernelVariant.Scalar);
            GemmS8U8.Multiply(m, n, k, a, k, b, n, actual, n, variant);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Extreme_values_do_not_saturate()
    {
        // 255 x 127 summed over 288 steps: far beyond int16, exactly representable in int32.
        const int k = 288;
        sbyte[] a = Enumerable.Repeat((sbyte)127, k).Concat(Enumerable.Repeat((sbyte)-127, k)).ToArray();
        byte[] b = Enumerable.Repeat((byte)255, k).ToArray();
        foreach (KernelVariant v in GemmS8U8.SupportedVariants)
        {
            int[] c = new int[2];
            GemmS8U8.Multiply(2, 1, k, a, k, b, 1, c, 1, v);
            Assert.Equal([255 * 127 * k, -255 * 127 * k], c);
        }
    }

    [Fact]
    public void Zero_points_leave_the_loop_through_row_sums()
    {
        // sum_p a[p] (b[p] - zb) = sum_p a[p] b[p] - zb sum_p a[p]: the correction the int8 layers apply.
        (sbyte[] a, byte[] b) = Operands(5, 9, 31, 99, extreme: false);
        const int zb = 131;
        int[] product = new int[45];
        GemmS8U8.Multiply(5, 9, 31, a, 31, b, 9, product, 9, GemmS8U8.Best);
        for (int i = 0; i < 5; i++)
        {
            int rowSum = a.Skip(i * 31).Take(31).Sum(v => v);
            for (int j = 0; j < 9; j++)
            {
                int direct = 0;
                for (int p = 0; p < 31; p++)
                {
                    direct += a[i * 31 + p] * (b[p * 9 + j] - zb);
                }
                Assert.Equal(direct, product[i * 9 + j] - zb * rowSum);
            }
        }
    }

    [Fact]
    public void Bad_shapes_are_refused_and_empty_products_are_legal()
    {
        Assert.Throws<ArgumentException>(() => GemmS8U8.Multiply(2, 2, 2, new sbyte[3], 2, new byte[4], 2, new int[4], 2, KernelVariant.Scalar));
        int[] c = [5, 5];
        GemmS8U8.Multiply(1, 2, 0, [], 0, [], 2, c, 2, GemmS8U8.Best);
        Assert.Equal([0, 0], c);
    }

    [Fact]
    public void The_portable_packed_loop_equals_the_reference_on_odd_shapes()
    {
        ulong seed = 500;
        foreach (int m in new[] { 1, 3, 5, 9 })
        foreach (int n in new[] { 1, 15, 17, 33 })
        foreach (int k in new[] { 1, 2, 9, 31 })
        {
            (sbyte[] a, byte[] b) = Operands(m, n, k, seed++, extreme: seed % 2 == 0);
            int[] expected = new int[m * n], actual = new int[m * n];
            GemmS8U8.Multiply(m, n, k, a, k, b, n, expected, n, KernelVariant.Scalar);
            int[] packedA = new int[GemmS8U8.PackedWeightsLength(m, k, KernelVariant.Scalar)];
            byte[] packedB = new byte[GemmS8U8.PackedActivationsLength(k, n, KernelVariant.Scalar)];
            GemmS8U8.PackWeights(m, k, a, k, packedA, KernelVariant.Scalar);
            GemmS8U8.PackActivations(k, n, b, n, packedB, KernelVariant.Scalar);
            GemmS8U8.MultiplyPacked(m, n, k, packedA, packedB, actual, n, KernelVariant.Scalar);
            Assert.Equal(expected, actual);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Packing_a_transposed_batch_equals_packing_its_transpose_and_column_sums_match(KernelVariant variant)
    {
        var random = new SeededRandom(8);
        foreach (int n in new[] { 1, 5, 16, 17, 40 })
        foreach (int k in new[] { 1, 2, 7, 64, 129 })
        {
            byte[] x = Enumerable.Range(0, n * k).Select(_ => (byte)random.NextInt(256)).ToArray();   // [n, k]
            byte[] xt = new byte[k * n];                                                              // [k, n]
            for (int s = 0; s < n; s++)
            {
                for (int p = 0; p < k; p++)
                {
                    xt[p * n + s] = x[s * k + p];
                }
            }
            byte[] fromRows = new byte[GemmS8U8.PackedActivationsLength(k, n, variant)], fromColumns = new byte[fromRows.Length];
            GemmS8U8.PackActivationsTransposed(k, n, x, k, fromRows, variant);
            GemmS8U8.PackActivations(k, n, xt, n, fromColumns, variant);
            Assert.Equal(fromColumns, fromRows);
            int[] sums = new int[n];
            GemmS8U8.PackedColumnSums(k, n, fromRows, sums, variant);
            for (int s = 0; s < n; s++)
            {
                Assert.Equal(x.Skip(s * k).Take(k).Sum(v => v), sums[s]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Direct_convolution_packing_equals_im2col_then_pack(KernelVariant variant)
    {
        var random = new SeededRandom(21);
        foreach ((int c, int h, int w, int kernel, int pad) in new[] { (1, 32, 32, 3, 1), (3, 5, 16, 3, 1), (2, 7, 32, 3, 1), (5, 4, 16, 1, 0), (2, 6, 16, 5, 2), (3, 5, 48, 3, 1), (2, 3, 64, 3, 1) })
        {
            var g = new ConvGeometry(c, h, w, kernel, kernel, 1, 1, pad, pad);
            Assert.True(ConvPackQ8.CanPackDirect(g));
            byte[] image = Enumerable.Range(0, g.InputSize).Select(_ => (byte)random.NextInt(256)).ToArray();
            byte[] direct = new byte[ConvPackQ8.PackedLength(g, variant)], reference = new byte[direct.Length];
            ConvPackQ8.Pack(image, g, 93, new byte[ConvPackQ8.ScratchLength(g)], direct, variant);
            ConvPackQ8.PackViaIm2Col(image, g, 93, new byte[g.ColumnRows * g.ColumnCols], reference, variant);
            Assert.Equal(reference, direct);
        }
        // Two panels per load (the default where AVX2 runs) against panel by panel, on every variant's layout: odd panel
        // counts (a pair and a single), depths with a partial last group (27: pairs and quads), a band inside the image.
        foreach (KernelVariant v in GemmS8U8.SupportedVariants)
        foreach ((int c, int h, int w) in new[] { (3, 6, 48), (2, 5, 64), (1, 4, 32), (32, 8, 32) })
        {
            var g = new ConvGeometry(c, h, w, 3, 3, 1, 1, 1, 1);
            byte[] image = Enumerable.Range(0, g.InputSize).Select(_ => random.NextInt(4) == 0 ? (byte)255 : (byte)random.NextInt(256)).ToArray();
            byte[] bordered = new byte[ConvPackQ8.ScratchLength(g)];
            ConvPackQ8.Border(image, g, 7, bordered);
            int rows = Math.Min(4, g.OutHeight), start = g.OutHeight - rows;
            int length = rows * (w / GemmS8U8.PanelWidth) * GemmS8U8.PanelLength(g.ColumnRows, v);
            byte[] paired = new byte[length], single = new byte[length];
            ConvPackQ8.PackBorderedRows(bordered, g, start, g.OutHeight, paired, v, pairPanels: true);
            ConvPackQ8.PackBorderedRows(bordered, g, start, g.OutHeight, single, v, pairPanels: false);
            Assert.Equal(single, paired);
        }
        // Stride 2 and widths that are not multiples of 16 take the im2col path.
        Assert.False(ConvPackQ8.CanPackDirect(new ConvGeometry(1, 8, 8, 3, 3, 2, 2, 1, 1)));
        Assert.False(ConvPackQ8.CanPackDirect(new ConvGeometry(1, 8, 9, 3, 3, 1, 1, 1, 1)));
    }
}
