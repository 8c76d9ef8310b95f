using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Tests.Quantization;

public class IntegerKernelTests
{
    [Fact]
    public void Int8_im2col_pads_with_the_zero_point_and_matches_the_float_layout()
    {
        var g = new ConvGeometry(2, 5, 7, 3, 3, 1, 1, 1, 1);
        var random = new SeededRandom(1);
        byte[] image = Enumerable.Range(0, g.InputSize).Select(_ => (byte)random.NextInt(256)).ToArray();
        byte[] col = new byte[g.ColumnRows * g.ColumnCols];
        Im2ColF32.Im2Col<byte>(image, g, col, padding: 37);
        float[] colFloat = new float[col.Length];
        Im2ColF32.Im2ColScalar(image.Select(v => v + 1f).ToArray(), g, colFloat);   // +1 so that padding (0) is distinguishable
        for (int i = 0; i < col.Length; i++)
        {
            Assert.Equal(colFloat[i] == 0f ? 37 : colFloat[i] - 1f, col[i]);
        }
    }

    [Fact]
    public void Integer_average_pooling_rounds_half_away_from_zero()
    {
        var g = new ConvGeometry(1, 2, 4, 2, 2, 2, 2, 0, 0);
        // Windows: {1, 2, 1, 2} sum 6 -> 1.5 -> 2; {0, 0, 0, 1} sum 1 -> 0.25 -> 0.
        byte[] x = [1, 2, 0, 0, 1, 2, 0, 1];
        byte[] y = new byte[2];
        AvgPoolQ8.Forward(x, g, y);
        Assert.Equal([2, 0], y);
        sbyte[] xs = [-1, -2, 0, 0, -1, -2, 0, -1];
        sbyte[] ys = new sbyte[2];
        AvgPoolQ8.Forward(xs, g, ys);
        Assert.Equal(new sbyte[] { -2, 0 }, ys);   // -1.5 -> -2, -0.25 -> 0
        byte[] full = [255, 255, 255, 255, 255, 255, 255, 255];
        AvgPoolQ8.Forward(full, g, y);
        Assert.Equal([255, 255], y);
    }

    [Fact]
    public void Requantization_matches_the_real_rescaling_and_clamps_with_fused_relu()
    {
        const double multiplier = 0.0123;
        (int mantissa, int shift) = FixedPoint.QuantizeMultiplier(multiplier);
        int[] acc = [-20000, -100, 0, 40, 41, 1000, 20000, int.MaxValue / 2];
        byte[] plain = new byte[acc.Length], relu = new byte[acc.Length];
        RequantizeS32.Row(acc, addend: 0, mantissa, shift, zeroPoint: 128, low: 0, high: 255, plain);
        RequantizeS32.Row(acc, addend: 0, mantissa, shift, zeroPoint: 128, low: 128, high: 255, relu);
        for (int i = 0; i < acc.Length; i++)
        {
            long expected = Math.Clamp((long)Math.Round(acc[i] * multiplier, MidpointRounding.AwayFromZero) + 128, 0, 255);
            Assert.True(Math.Abs(plain[i] - expected) <= 1, $"acc {acc[i]}: {plain[i]} vs {expected}");
            Assert.Equal(Math.Max(plain[i], (byte)128), relu[i]);
        }
        Assert.Equal(0, plain[0]);
        Assert.Equal(255, plain[^1]);
    }
}
