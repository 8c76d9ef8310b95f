using Engine.Kernels;

namespace Engine.Tests.Quantization;

/// <summary>
/// The tile-pooled int8 convolution band (GEMM tile, requantization and average pooling in L1) against its scalar twin:
/// the three-loop GEMM, <see cref="RequantizeS32.RowScalar{T}"/>, then <see cref="AvgPoolQ8.ForwardScalar{T}"/>.
/// </summary>
public class PooledGemmQ8Tests
{
    [Theory]
    [MemberData(nameof(FusedInt8PathTests.Variants), MemberType = typeof(FusedInt8PathTests))]
    public void Pooled_band_equals_gemm_then_scalar_requantization_then_scalar_pooling_on_odd_shapes(KernelVariant variant)
    {
        var random = new SeededRandom(21);
        int cases = 0;
        foreach (int m in new[] { 1, 3, 5, 7, 64 })
        foreach (int k in new[] { 1, 3, 13, 288 })
        foreach (int panelsPerRow in new[] { 1, 3 })
        foreach (int pool in new[] { 1, 2, 4, 8, 16 })
        foreach (bool extreme in new[] { false, true })
        {
            if (m == 64 && k < 288 && pool != 4)
            {
                continue;
            }
            Check(random, variant, m, k, panelsPerRow, pool, extreme);
            cases++;
        }
        Assert.True(cases > 100);
    }

    [Theory]
    [MemberData(nameof(FusedInt8PathTests.Variants), MemberType = typeof(FusedInt8PathTests))]
    public void Pooled_band_rejects_windows_that_do_not_divide_a_panel(KernelVariant variant)
    {
        Assert.False(PooledGemmQ8.SupportsPool(3));
        Assert.False(PooledGemmQ8.SupportsPool(0));
        Assert.True(PooledGemmQ8.SupportsPool(4));
        int k = 9, panels = 3 * 2;
        int[] packedA = new int[GemmS8U8.PackedWeightsLength(2, k, variant)];
        byte[] packedB = new byte[panels * GemmS8U8.PanelLength(k, variant)];
        Assert.Throws<ArgumentException>(() => PooledGemmQ8.MultiplyRequantizePool(2, k, 2, 3, packedA, packedB, [0, 0], [1 << 30, 1 << 30],
            [0, 0], 0, 0, 255, new int[PooledGemmQ8.SumsLength(2)], new byte[64], 10, variant));
    }

    private static void Check(SeededRandom random, KernelVariant variant, int m, int k, int panelsPerRow, int pool, bool extreme)
    {
        const int width = GemmS8U8.PanelWidth;
        int rowWidth = panelsPerRow * width, n = pool * rowWidth, windows = rowWidth / pool;
        (sbyte[] a, byte[] b) = GemmS8U8Tests.Operands(m, n, k, (ulong)random.NextInt(int.MaxValue), extreme);
        int[] addends = new int[m], mantissas = new int[m], shifts = new int[m];
        for (int c = 0; c < m; c++)
        {
            addends[c] = random.NextInt(20001) - 10000;
            // Multipliers from 2^-20 (most codes clamp low or sit near the zero point) to 2 (a left shift that saturates).
            double multiplier = Math.Pow(2, -20 + 21 * random.NextUniform(0f, 1f));
            (mantissas[c], shifts[c]) = FixedPoint.QuantizeMultiplier(multiplier);
        }
        int zeroPoint = random.NextInt(256), low = random.NextInt(2) == 0 ? 0 : zeroPoint, high = 255;

        // The twin: im2col-order B [k, pool rows of rowWidth columns], the three-loop GEMM, scalar requantization, scalar pooling.
        int[] acc = new int[m * n];
        GemmS8U8.Multiply(m, n, k, a, k, b, n, acc, n, KernelVariant.Scalar);
        byte[] codes = new byte[m * n];
        for (int c = 0; c < m; c++)
        {
            RequantizeS32.RowScalar<byte>(acc.AsSpan(c * n, n), addends[c], mantissas[c], shifts[c], zeroPoint, low, high, codes.AsSpan(c * n, n));
        }
        byte[] expected = new byte[m * windows];
        AvgPoolQ8.ForwardScalar<byte>(codes, new ConvGeometry(m, pool, rowWidth, pool, pool, pool, pool, 0, 0), expected);

        int[] packedA = new int[GemmS8U8.PackedWeightsLength(m, k, variant)];
        GemmS8U8.PackWeights(m, k, a, k, packedA, variant);
        byte[] packedB = new byte[GemmS8U8.PackedActivationsLength(k, n, variant)];
        GemmS8U8.PackActivations(k, n, b, n, packedB, variant);
        int ldp = windows + 3;
        byte[] actual = new byte[(m - 1) * ldp + windows];
        Array.Fill(actual, (byte)0xA5);
        PooledGemmQ8.MultiplyRequantizePool(m, k, panelsPerRow, pool, packedA, packedB, addends, mantissas, shifts, zeroPoint, low, high,
            new int[PooledGemmQ8.SumsLength(m)], actual, ldp, variant);
        for (int c = 0; c < m; c++)
        {
            Assert.Equal(expected.AsSpan(c * windows, windows).ToArray(), actual.AsSpan(c * ldp, windows).ToArray());
            if (c < m - 1)
            {
                Assert.All(actual.AsSpan(c * ldp + windows, 3).ToArray(), v => Assert.Equal(0xA5, v));   // between rows: untouched
            }
        }
    }
}
