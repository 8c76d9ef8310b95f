using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Tests.Layers;

public class LayerGradientTests
{
    [Theory]
    [InlineData(1, 2, 3, 1, 1, 4, 4)]
    [InlineData(3, 4, 3, 1, 1, 7, 9)]
    [InlineData(2, 3, 3, 2, 1, 9, 7)]
    [InlineData(2, 2, 5, 2, 2, 11, 6)]
    [InlineData(3, 5, 1, 1, 0, 5, 5)]
    [InlineData(2, 3, 2, 3, 0, 8, 7)]
    public void Conv2d_backward_matches_finite_differences(int cin, int cout, int k, int stride, int pad, int h, int w)
    {
        var conv = new Conv2d(cin, cout, k, stride, pad);
        conv.Initialize(new SeededRandom(7));
        GradientCheck.Layer(conv, TestData.FloatTensor(8, 3, cin, h, w), seed: 9);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 9)]
    [InlineData(5, 33, 17)]
    public void Linear_backward_matches_finite_differences(int batch, int inFeatures, int outFeatures)
    {
        var linear = new Linear(inFeatures, outFeatures);
        linear.Initialize(new SeededRandom(3));
        GradientCheck.Layer(linear, TestData.FloatTensor(4, batch, inFeatures), seed: 5);
    }

    [Theory]
    [InlineData(4, 4, 8, 8)]
    [InlineData(2, 2, 7, 9)]
    [InlineData(3, 2, 9, 7)]
    [InlineData(1, 1, 3, 3)]
    public void AvgPool2d_backward_matches_finite_differences(int kernel, int stride, int h, int w)
    {
        GradientCheck.Layer(new AvgPool2d(kernel, stride), TestData.FloatTensor(1, 2, 3, h, w), seed: 2);
    }

    [Fact]
    public void ReLU_backward_matches_finite_differences()
    {
        var x = new FloatTensor(TestData.AwayFromZero(2 * 3 * 5 * 7, 11), 2, 3, 5, 7);
        GradientCheck.Layer(new ReLU(), x, seed: 12);
    }

    [Fact]
    public void Flatten_backward_matches_finite_differences_and_keeps_channel_major_order()
    {
        FloatTensor x = TestData.FloatTensor(1, 2, 3, 4, 5);
        var flatten = new Flatten();
        FloatTensor y = flatten.Forward(x);
        Assert.Equal([2, 60], y.Shape.ToArray());
        // Column (c H + h) W + w of sample n holds x[n, c, h, w], as torch.flatten(x, 1).
        Assert.Equal(x.Data[((1 * 3 + 2) * 4 + 3) * 5 + 4], y.Data[1 * 60 + (2 * 4 + 3) * 5 + 4]);
        GradientCheck.Layer(flatten, x, seed: 3);
    }

    [Fact]
    public void Conv2d_gives_the_same_result_whatever_the_thread_count_and_batch_path()
    {
        var results = new List<(float[] Y, float[] DW, float[] DX)>();
        foreach ((int threads, int batch) in new[] { (1, 3), (2, 3), (3, 3), (4, 3) })
        {
            var conv = new Conv2d(3, 5, 3, 1, 1) { Threads = threads };
            conv.Initialize(new SeededRandom(1));
            FloatTensor x = TestData.FloatTensor(2, batch, 3, 9, 7);
            float[] y = conv.Forward(x).Data.ToArray();
            FloatTensor dy = TestData.FloatTensor(3, batch, 5, 9, 7);
            float[] dx = conv.Backward(dy)!.Data.ToArray();
            results.Add((y, conv.Weight.Gradient.Data.ToArray(), dx));
        }
        foreach (var r in results.Skip(1))
        {
            Assert.Equal(results[0].Y, r.Y);
            Assert.Equal(results[0].DX, r.DX);
            for (int i = 0; i < r.DW.Length; i++)
            {
                Assert.Equal(results[0].DW[i], r.DW[i], 1e-4f);
            }
        }
    }

    [Fact]
    public void Parameter_gradients_accumulate_across_backward_calls()
    {
        var linear = new Linear(4, 3);
        linear.Initialize(new SeededRandom(1));
        FloatTensor x = TestData.FloatTensor(2, 2, 4), dy = TestData.FloatTensor(3, 2, 3);
        linear.Forward(x);
        linear.Backward(dy);
        float[] once = linear.Weight.Gradient.Data.ToArray();
        linear.Forward(x);
        linear.Backward(dy);
        for (int i = 0; i < once.Length; i++)
        {
            Assert.Equal(2 * once[i], linear.Weight.Gradient.Data[i], 1e-6f);
        }
    }
}

public class FusedBackwardTests
{
    [Theory]
    [InlineData(4, 4, 32, 32)]    // the seed network's pool: non-overlapping windows, the direct path
    [InlineData(4, 4, 9, 11)]     // floor mode: rows and columns no window covers
    [InlineData(3, 2, 9, 7)]      // overlapping windows: the general path
    [InlineData(2, 3, 8, 8)]      // gaps between windows
    public void Relu_then_pool_backward_fused_equals_the_two_passes_bit_for_bit(int kernel, int stride, int h, int w)
    {
        float[]? unfused = null;
        foreach (bool fuse in new[] { false, true })
        {
            var network = new Sequential(("relu", new ReLU()), ("pool", new AvgPool2d(kernel, stride)), ("flatten", new Flatten()))
            {
                FuseBackward = fuse,
            };
            FloatTensor x = TestData.FloatTensor(1, 3, 5, h, w);
            FloatTensor y = network.Forward(x);
            FloatTensor dy = TestData.FloatTensor(2, [.. y.Shape]);
            // Stale values in the gradient buffers must not leak into the fused result: run twice with different dy.
            network.Backward(TestData.FloatTensor(3, [.. y.Shape]), computeInputGradient: true);
            float[] dx = network.Backward(dy, computeInputGradient: true)!.Data.ToArray();
            if (unfused is null)
            {
                unfused = dx;
            }
            else
            {
                Assert.Equal(unfused, dx);
            }
        }
    }

    [Theory]
    [InlineData(4, 4, 8, 12)]
    [InlineData(3, 2, 9, 7)]
    public void Relu_then_pool_fused_backward_passes_the_finite_difference_check(int kernel, int stride, int h, int w)
    {
        // The network as one layer, so the input gradient (the fused pass's output) is checked coordinate by coordinate;
        // inputs at least 0.05 away from the ReLU's kink, which a step of 0.01 cannot cross.
        var network = new Sequential(("relu", new ReLU()), ("pool", new AvgPool2d(kernel, stride)), ("flatten", new Flatten()));
        var x = new FloatTensor(TestData.AwayFromZero(2 * 3 * h * w, 8), 2, 3, h, w);
        GradientCheck.Layer(new NetworkLayer(network), x, seed: 4);
    }

    // A network seen as a layer whose backward pass returns the network's input gradient.
    private sealed class NetworkLayer(Sequential network) : Layer
    {
        public override int[] OutputShape(ReadOnlySpan<int> inputShape) => network.OutputShape(inputShape);

        public override FloatTensor Forward(FloatTensor input) => network.Forward(input);

        public override FloatTensor? Backward(FloatTensor outputGradient) => network.Backward(outputGradient, computeInputGradient: true);

        public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
            InferenceWorkspace workspace) => throw new NotSupportedException();

        public override string ToString() => "network";
    }
}
