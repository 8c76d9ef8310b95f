using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;
using Engine.Tests.Data;

namespace Engine.Tests.Layers;

/// <summary>Conv2d with the Winograd path forced or chosen: gradients, agreement with the direct path, determinism.</summary>
public class WinogradConvTests
{
    [Theory]
    [InlineData(3, 4, 1, 7, 9)]
    [InlineData(8, 9, 1, 5, 6)]
    [InlineData(2, 3, 0, 6, 5)]
    [InlineData(2, 3, 2, 4, 4)]
    [InlineData(1, 1, 1, 1, 1)]
    public void Conv2d_backward_with_winograd_forced_matches_finite_differences(int cin, int cout, int pad, int h, int w)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        var conv = new Conv2d(cin, cout, 3, 1, pad) { Algorithm = ConvAlgorithm.Winograd };
        conv.Initialize(new SeededRandom(7));
        GradientCheck.Layer(conv, TestData.FloatTensor(8, 3, cin, h, w), seed: 9);
    }

    [Theory]
    [InlineData(1, 3, 37, 19)]
    [InlineData(2, 3, 37, 19)]
    [InlineData(3, 3, 37, 19)]
    [InlineData(4, 1, 37, 19)]
    [InlineData(2, 1, 64, 70)]     // 16 x 18 tiles = 9 chunks: batch 1 splits them over 2 threads
    public void Winograd_and_direct_agree_and_winograd_is_the_same_for_every_thread_count(int threads, int batch, int h, int w)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        FloatTensor x = TestData.FloatTensor(2, batch, 9, h, w), dy = TestData.FloatTensor(3, batch, 10, h, w);
        (float[] Y, float[] DX, float[] DW) Run(ConvAlgorithm algorithm, int t)
        {
            var conv = new Conv2d(9, 10, 3, 1, 1) { Threads = t, Algorithm = algorithm };
            conv.Initialize(new SeededRandom(1));
            float[] y = conv.Forward(x).Data.ToArray();
            float[] dx = conv.Backward(dy)!.Data.ToArray();
            return (y, dx, conv.Weight.Gradient.Data.ToArray());
        }
        var winograd = Run(ConvAlgorithm.Winograd, threads);
        var one = Run(ConvAlgorithm.Winograd, 1);
        Assert.Equal(one.Y, winograd.Y);
        Assert.Equal(one.DX, winograd.DX);
        var direct = Run(ConvAlgorithm.Direct, threads);
        Assert.Equal(direct.DW, winograd.DW);     // the weight gradient does not depend on the algorithm
        // Sums of 81 (forward) or 90 (input gradient) products of values in [-1, 1] times weights of about 0.1:
        // 3e-5 S (WinogradTests) with S below 10 here.
        for (int i = 0; i < direct.Y.Length; i++)
        {
            Assert.Equal(direct.Y[i], winograd.Y[i], 3e-4f);
        }
        for (int i = 0; i < direct.DX.Length; i++)
        {
            Assert.Equal(direct.DX[i], winograd.DX[i], 3e-4f);
        }
        Assert.NotEqual(direct.Y, winograd.Y);    // the forced path really ran a different algorithm
    }

    [Fact]
    public void Inference_splitting_an_image_over_layer_threads_gives_the_bits_of_one_thread_and_of_the_training_pass()
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        var g = new ConvGeometry(9, 64, 70, 3, 3, 1, 1, 1, 1);
        Assert.Equal(2, WinogradF32.ThreadsFor(g, 2));
        var conv = new Conv2d(9, 10, 3, 1, 1) { Threads = 1 };
        conv.Initialize(new SeededRandom(3));
        conv.PrepareInference();
        FloatTensor x = TestData.FloatTensor(4, 2, 9, 64, 70);
        float[] expected = conv.Forward(x).Data.ToArray();
        float[] one = new float[expected.Length], two = new float[expected.Length];
        conv.Infer(x.Data, [9, 64, 70], 2, one, new InferenceWorkspace());
        conv.Infer(x.Data, [9, 64, 70], 2, two, new InferenceWorkspace { LayerThreads = 2 });
        Assert.Equal(expected, one);
        Assert.Equal(expected, two);
    }

    [Fact]
    public void Auto_takes_winograd_for_conv2_and_direct_for_conv1()
    {
        Assert.True(new Conv2d(32, 64, 3, 1, 1).PrefersWinograd);
        Assert.True(new Conv2d(8, 16, 3, 1, 1).PrefersWinograd);
        Assert.False(new Conv2d(1, 32, 3, 1, 1).PrefersWinograd);
        Assert.False(new Conv2d(8, 8, 3, 1, 1).PrefersWinograd);
        Assert.False(new Conv2d(4, 64, 3, 1, 1).PrefersWinograd);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Inference_with_winograd_is_bit_identical_to_the_training_pass_for_any_thread_count_and_split(int threads)
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        Sequential network = SeedNetwork.Create(seed: 5, conv1Channels: 8, conv2Channels: 16, hidden: 16);
        Assert.True(((Conv2d)network["conv2"]).PrefersWinograd);
        const int batch = 7;
        float[] inputs = TestData.Uniform(batch * 1024, 6);
        float[] expected = network.Forward(new FloatTensor(inputs, batch, 1, 32, 32)).Data.ToArray();
        Predictor model = Predictor.FromNetwork(network, [1, 32, 32], 0f, 1f, new PredictorOptions { Threads = threads });
        float[] all = new float[batch * 10], single = new float[batch * 10];
        model.Predict(inputs, batch, all);
        for (int n = 0; n < batch; n++)
        {
            model.Predict(inputs.AsSpan(n * 1024, 1024), 1, single.AsSpan(n * 10, 10));
        }
        Assert.Equal(expected, all);
        Assert.Equal(expected, single);
    }

    [Fact]
    public void Bundled_model_predicts_the_same_digits_with_winograd_and_direct()
    {
        Assert.SkipUnless(GemmF32.HasAvx2Fma, "the Winograd kernel needs AVX2 + FMA, which this CPU lacks.");
        FloatModel model = ModelFile.LoadFloat(Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.safetensors"));
        MnistDataset test = BundledMnist.Test;
        int count = test.Count;
        float[] inputs = new float[count * 1024];
        IBatchSource digits = BatchIterator.Sequential(test, count, model.InputMean, model.InputStd);
        digits.FillBatch(0, 0, count, inputs, new int[count]);
        var x = new FloatTensor(inputs, count, 1, 32, 32);
        float[] Logits(ConvAlgorithm algorithm)
        {
            foreach ((_, Layer layer) in model.Network.Layers)
            {
                if (layer is Conv2d conv)
                {
                    conv.Algorithm = algorithm;
                }
            }
            return model.Network.Forward(x).Data.ToArray();
        }
        float[] direct = Logits(ConvAlgorithm.Direct), winograd = Logits(ConvAlgorithm.Winograd);
        double worst = 0, largest = 0;
        for (int n = 0; n < count; n++)
        {
            Span<float> d = direct.AsSpan(n * 10, 10), w = winograd.AsSpan(n * 10, 10);
            Assert.Equal(TensorArgMax(d), TensorArgMax(w));
            for (int c = 0; c < 10; c++)
            {
                worst = Math.Max(worst, Math.Abs(d[c] - w[c]));
                largest = Math.Max(largest, Math.Abs(d[c]));
            }
        }
        // Measured: 2.4e-6 on logits up to 6.1 in magnitude (docs/float-engine.md); the bound leaves a factor 8.
        Assert.True(worst <= 2e-5, $"largest logit difference {worst:E2} (logits up to {largest:F1})");
        Assert.True(count >= 1000);
    }

    private static int TensorArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best;
    }
}
