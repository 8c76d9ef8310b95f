using System.Runtime.InteropServices;
using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class RowGemmTests
{
    public static TheoryData<int, int> Shapes() => new()
    {
        // n (outputs), k (depth): panel edges, a ragged last group, depth across the 256-deep cache blocks
        { 1, 1 }, { 15, 3 }, { 16, 256 }, { 17, 257 }, { 10, 128 }, { 128, 600 }, { 130, 513 }, { 200, 31 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void One_row_equals_the_same_row_inside_a_packed_batch_bit_for_bit(int n, int k)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the pre-packed GEMM needs AVX2 + FMA, which this CPU lacks.");
        const int batch = 7;
        float[] a = TestData.Uniform(batch * k, 41), b = TestData.Uniform(k * n, 42);
        float[] panels = new float[GemmF32.PanelsLength(k, n)];
        GemmF32.PackPanels(b, n, k, n, panels);
        float[] rows = new float[GemmF32.PackedRowsLength(batch, k)];
        GemmF32.PackRows(a, k, batch, k, rows);
        float[] batched = new float[batch * n];
        GemmF32.MultiplyPrepacked(batch, n, k, rows, panels, batched, n, accumulate: false);
        float[] initial = TestData.Uniform(n, 43);
        foreach (KernelVariant variant in new[] { KernelVariant.Avx2Fma, KernelVariant.Avx512 })
        {
            if (variant == KernelVariant.Avx512 && !GemmF32.SupportedVariants.Contains(KernelVariant.Avx512))
            {
                continue;
            }
            for (int row = 0; row < batch; row++)
            {
                float[] alone = new float[n];
                GemmF32.MultiplyRowPrepacked(n, k, a.AsSpan(row * k, k), panels, alone, accumulate: false, variant);
                Assert.True(BitsEqual(batched.AsSpan(row * n, n), alone), $"{variant} row {row}");
            }
            // Accumulating: the same as the packed GEMM accumulating onto the same values.
            float[] expected = (float[])initial.Clone(), actual = (float[])initial.Clone();
            float[] one = new float[GemmF32.PackedRowsLength(1, k)];
            GemmF32.PackRows(a, k, 1, k, one);
            GemmF32.MultiplyPrepacked(1, n, k, one, panels, expected, n, accumulate: true);
            GemmF32.MultiplyRowPrepacked(n, k, a.AsSpan(0, k), panels, actual, accumulate: true, variant);
            Assert.True(BitsEqual(expected, actual), $"{variant} accumulating");
        }
    }

    [Fact]
    public void One_row_matches_the_scalar_reference()
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the pre-packed GEMM needs AVX2 + FMA, which this CPU lacks.");
        const int n = 45, k = 300;
        float[] a = TestData.Uniform(k, 44), b = TestData.Uniform(k * n, 45);
        float[] panels = new float[GemmF32.PanelsLength(k, n)];
        GemmF32.PackPanels(b, n, k, n, panels);
        float[] expected = new float[n], actual = new float[n];
        GemmF32.Multiply(false, false, 1, n, k, a, k, b, n, expected, n, accumulate: false, KernelVariant.Scalar);
        GemmF32.MultiplyRowPrepacked(n, k, a, panels, actual, accumulate: false, GemmF32.Best == KernelVariant.Avx512 ? KernelVariant.Avx512 : KernelVariant.Avx2Fma);
        for (int j = 0; j < n; j++)
        {
            Assert.True(MathF.Abs(expected[j] - actual[j]) <= 4e-7f * (k + 2) * Math.Max(1f, MathF.Abs(expected[j])), $"[{j}] {expected[j]} vs {actual[j]}");
        }
    }

    private static bool BitsEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        MemoryMarshal.Cast<float, int>(a).SequenceEqual(MemoryMarshal.Cast<float, int>(b));
}
