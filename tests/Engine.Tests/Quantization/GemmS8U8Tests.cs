using Engine.Kernels;

namespace Engine.Tests.Quantization;

public class GemmS8U8Tests
{
    private static (sbyte[] A, byte[] B) Operands(int m, int n, int k, ulong seed, bool extreme)
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
}
