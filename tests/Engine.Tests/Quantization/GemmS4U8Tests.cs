using Engine.Kernels;

namespace Engine.Tests.Quantization;

/// <summary>The nibble-packed 4-bit GEMM (<see cref="GemmS4U8"/>) against the three-loop int8 reference.</summary>
public class GemmS4U8Tests
{
    public static TheoryData<KernelVariant> AllVariants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in GemmS8U8.SupportedVariants)
        {
            data.Add(v);
        }
        return data;
    }

    /// <summary>Codes in [-8, 7] (symmetric: [-7, 7]); with <paramref name="extreme"/>, only the two ends of the range and activations 0 or 255.</summary>
    private static (sbyte[] A, byte[] B) Operands(int m, int n, int k, ulong seed, bool extreme, bool symmetric)
    {
        var random = new SeededRandom(seed);
        int low = symmetric ? -7 : -8;
        sbyte[] a = new sbyte[m * k];
        byte[] b = new byte[k * n];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (sbyte)(extreme ? (random.NextInt(2) == 0 ? low : 7) : low + random.NextInt(8 - low));
        }
        for (int i = 0; i < b.Length; i++)
        {
            b[i] = extreme ? (random.NextInt(4) == 0 ? (byte)0 : (byte)255) : (byte)random.NextInt(256);
        }
        return (a, b);
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void Nibble_kernel_equals_the_scalar_reference_bit_for_bit_on_odd_shapes_and_extremes(KernelVariant variant)
    {
        ulong seed = 1;
        foreach (int m in new[] { 1, 3, 4, 5, 17, 33 })
        foreach (int n in new[] { 1, 3, 5, 16, 17, 33 })
        foreach (int k in new[] { 1, 3, 5, 7, 8, 9, 17, 33, 291 })
        foreach (bool extreme in new[] { false, true })
        foreach (bool symmetric in new[] { false, true })
        {
            (sbyte[] a, byte[] b) = Operands(m, n, k, seed++, extreme, symmetric);
            int[] expected = new int[m * n], actual = Enumerable.Repeat(-7, m * n).ToArray();
            GemmS8U8.Multiply(m, n, k, a, k, b, n, expected, n, KernelVariant.Scalar);
            GemmS4U8.Multiply(m, n, k, a, k, b, n, actual, n, variant);
            Assert.True(expected.SequenceEqual(actual), $"{variant}: m={m} n={n} k={k} extreme={extreme} symmetric={symmetric}");
        }
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void Extreme_codes_against_full_activations_sum_exactly(KernelVariant variant)
    {
        // -8 x 255 and 7 x 255 over 4,097 steps (an odd depth past fc1's): exact in int32, no sign lost in the nibbles.
        const int k = 4097;
        sbyte[] a = [.. Enumerable.Repeat((sbyte)-8, k), .. Enumerable.Repeat((sbyte)7, k), .. Enumerable.Repeat((sbyte)-7, k)];
        byte[] b = Enumerable.Repeat((byte)255, k).ToArray();
        int[] c = new int[3];
        GemmS4U8.Multiply(3, 1, k, a, k, b, 1, c, 1, variant);
        Assert.Equal([-8 * 255 * k, 7 * 255 * k, -7 * 255 * k], c);
    }

    [Fact]
    public void Codes_outside_four_bits_are_refused()
    {
        int[] packed = new int[GemmS4U8.PackedWeightsLength(1, 3)];
        var e = Assert.Throws<ArgumentException>(() => GemmS4U8.PackWeights(1, 3, [1, 8, 0], 3, packed, GemmS8U8.Best));
        Assert.Contains("A[0, 1] = 8", e.Message);
        Assert.Throws<ArgumentException>(() => GemmS4U8.PackWeights(1, 3, [1, -9, 0], 3, packed, GemmS8U8.Best));
    }

    [Fact]
    public void Packed_weights_take_half_a_byte_per_code()
    {
        // fc1: 128 x 4,096 codes in 262,144 bytes.
        Assert.Equal(128 * 4096 / 2, GemmS4U8.PackedWeightsLength(128, 4096) * sizeof(int));
    }
}
