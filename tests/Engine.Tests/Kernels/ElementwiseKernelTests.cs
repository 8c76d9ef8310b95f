using Engine.Kernels;

namespace Engine.Tests.Kernels;

public class ElementwiseKernelTests
{
    public static TheoryData<int> OddLengths() => [0, 1, 7, 8, 9, 17, 33, 1000];

    [Theory]
    [MemberData(nameof(OddLengths))]
    public void Relu_backward_variants_match_the_scalar_reference(int length)
    {
        float[] y = TestData.Uniform(length, 1);
        ReluF32.Forward(y, y);
        float[] dy = TestData.Uniform(length, 2);
        float[] expected = new float[length];
        ReluF32.Backward(y, dy, expected, KernelVariant.Scalar);
        foreach (KernelVariant v in new[] { KernelVariant.Vector, KernelVariant.Avx2Fma })
        {
            float[] actual = new float[length];
            ReluF32.Backward(y, dy, actual, v);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Relu_forward_clamps_negatives_and_keeps_positives()
    {
        float[] y = new float[5];
        ReluF32.Forward([-2f, -0f, 0f, 0.5f, 3f], y);
        Assert.Equal([0f, 0f, 0f, 0.5f, 3f], y);
    }

    [Theory]
    [MemberData(nameof(OddLengths))]
    public void Softmax_and_log_softmax_match_the_double_reference(int length)
    {
        if (length == 0)
        {
            Assert.Throws<ArgumentException>(() => SoftmaxF32.Softmax([], []));
            return;
        }
        float[] x = TestData.Uniform(length, 3, -20f, 20f);
        float[] expected = new float[length], actual = new float[length];
        SoftmaxF32.LogSoftmaxScalar(x, expected);
        SoftmaxF32.LogSoftmax(x, actual);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-4f * Math.Max(1f, MathF.Abs(expected[i])));
        }
        SoftmaxF32.SoftmaxScalar(x, expected);
        SoftmaxF32.Softmax(x, actual);
        for (int i = 0; i < length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-6f + 1e-5f * expected[i]);
        }
    }

    [Fact]
    public void Softmax_of_huge_logits_does_not_overflow()
    {
        float[] x = [1000f, 1001f, 1002f, -1e30f];
        float[] p = new float[4], logp = new float[4];
        SoftmaxF32.Softmax(x, p);
        SoftmaxF32.LogSoftmax(x, logp);
        // softmax(1000, 1001, 1002) = softmax(0, 1, 2) = e^i / (1 + e + e^2).
        double z = 1 + Math.E + Math.E * Math.E;
        Assert.Equal(1 / z, p[0], 1e-6);
        Assert.Equal(Math.E / z, p[1], 1e-6);
        Assert.Equal(Math.E * Math.E / z, p[2], 1e-6);
        Assert.Equal(0f, p[3]);
        Assert.Equal(2 - Math.Log(z), logp[2], 1e-5);
        Assert.All(p, v => Assert.True(float.IsFinite(v)));
    }
}

public class AvgPoolKernelTests
{
    [Theory]
    [InlineData(1, 4, 4, 2, 2)]
    [InlineData(3, 32, 32, 4, 4)]
    [InlineData(2, 9, 7, 3, 2)]
    [InlineData(2, 7, 9, 2, 3)]
    [InlineData(1, 1, 1, 1, 1)]
    [InlineData(5, 17, 33, 5, 5)]
    public void Fast_pooling_matches_the_scalar_twin(int channels, int h, int w, int k, int s)
    {
        var g = new Engine.Kernels.ConvGeometry(channels, h, w, k, k, s, s, 0, 0);
        float[] x = TestData.Uniform(g.InputSize, 1);
        int outSize = channels * g.OutHeight * g.OutWidth;
        float[] expected = new float[outSize], actual = new float[outSize];
        AvgPoolF32.ForwardScalar(x, g, expected);
        AvgPoolF32.Forward(x, g, actual);
        for (int i = 0; i < outSize; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-6f);
        }
        float[] dy = TestData.Uniform(outSize, 2);
        float[] dxExpected = TestData.Uniform(g.InputSize, 3), dxActual = (float[])dxExpected.Clone();
        AvgPoolF32.BackwardScalar(dy, g, dxExpected);
        AvgPoolF32.Backward(dy, g, dxActual);
        for (int i = 0; i < dxExpected.Length; i++)
        {
            Assert.Equal(dxExpected[i], dxActual[i], 1e-6f);
        }
    }
}
