using System.Numerics.Tensors;
using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class ConvEpilogueTests
{
    public static TheoryData<int, int, int, int> Shapes() => new()
    {
        // channels, rows, width, pool (rows a multiple of pool; widths not multiples of the vector widths, ragged windows)
        { 1, 1, 1, 1 },
        { 3, 5, 7, 1 },
        { 2, 4, 37, 1 },
        { 5, 8, 33, 4 },
        { 4, 12, 70, 4 },
        { 3, 6, 17, 3 },
        { 2, 4, 9, 2 },
        { 2, 5, 26, 5 },
        { 64, 4, 32, 4 },    // one band of the seed's conv2
        { 3, 8, 96, 4 },     // whole 32-column blocks: the AVX-512 pool-4 path
        { 1, 4, 3, 4 },      // narrower than a window: nothing to write
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_variant_equals_bias_relu_and_pool_layer_by_layer_bit_for_bit(int channels, int rows, int width, int pool)
    {
        // Strided planes, as a band of a larger output: raw planes 3 floats apart, output planes 2 apart.
        int rawStride = rows * width + 3, outRows = rows / pool, outWidth = width / pool, outStride = outRows * outWidth + 2;
        float[] raw = TestData.Uniform(channels * rawStride, 21, -2f, 2f), bias = TestData.Uniform(channels, 22);
        raw[0] = -0f;                 // max(-0, 0) is +0
        if (raw.Length > 5)
        {
            raw[5] = float.NaN;       // stays NaN through ReLU and pooling, as in the layers
        }
        foreach (bool relu in new[] { false, true })
        {
            foreach (bool withBias in new[] { false, true })
            {
                float[] expected = Unfused(raw, rawStride, channels, rows, width, withBias ? bias : [], relu, pool, outStride);
                int tested = 0;
                foreach (KernelVariant variant in ConvEpilogueF32.SupportedVariants)
                {
                    float[] actual = new float[expected.Length];
                    Array.Fill(actual, 7f);   // the gaps between planes must stay untouched
                    ConvEpilogueF32.Apply(raw, rawStride, channels, rows, width, withBias ? bias : [], relu, pool, actual, outStride, variant);
                    for (int i = 0; i < expected.Length; i++)
                    {
                        Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"{variant} relu {relu} bias {withBias} [{i}]: {expected[i]} vs {actual[i]}");
                    }
                    tested++;
                }
                Assert.True(tested >= 1);
            }
        }
    }

    [Fact]
    public void Rows_that_are_not_whole_windows_are_refused()
    {
        float[] raw = new float[30], y = new float[30];
        Assert.Throws<ArgumentException>(() => ConvEpilogueF32.Apply(raw, 30, 1, 5, 6, [], true, 2, y, 15, KernelVariant.Scalar));
    }

    // The layers' own operations: bias add (TensorPrimitives.Add), ReluF32.Forward, AvgPoolF32.Forward, plane by plane.
    private static float[] Unfused(float[] raw, int rawStride, int channels, int rows, int width, float[] bias, bool relu, int pool, int outStride)
    {
        int outRows = rows / pool, outWidth = width / pool;
        float[] y = Enumerable.Repeat(7f, Math.Max(0, (channels - 1) * outStride + outRows * outWidth)).ToArray();
        float[] plane = new float[rows * width];
        for (int c = 0; c < channels; c++)
        {
            raw.AsSpan(c * rawStride, rows * width).CopyTo(plane);
            if (bias.Length > 0)
            {
                TensorPrimitives.Add(plane, bias[c], plane);
            }
            if (relu)
            {
                ReluF32.Forward(plane, plane);
            }
            if (outRows * outWidth == 0)
            {
                continue;
            }
            Span<float> target = y.AsSpan(c * outStride, outRows * outWidth);
            if (pool == 1)
            {
                plane.CopyTo(target);
            }
            else
            {
                AvgPoolF32.Forward(plane, new ConvGeometry(1, rows, width, pool, pool, pool, pool, 0, 0), target);
            }
        }
        return y;
    }
}
