using Engine.Data;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Tests.Layers;
using Engine.Training;

namespace Engine.Tests.Quantization;

/// <summary>
/// Quantization-aware training: the fake-quantization stages compute the integer path's values, their backward pass is
/// the straight-through estimator, and the integer network built from a QAT model predicts what its float forward did.
/// </summary>
public class QuantizationAwareTrainingTests(TrainedDigitsFixture trained) : IClassFixture<TrainedDigitsFixture>
{
    // An observer that has seen exactly [min, max].
    private static FakeQuantize Stage(float min, float max, bool quantize = true)
    {
        var stage = new FakeQuantize(new MinMaxObserver(), quantize);
        stage.Observer.Observe([min, max]);
        stage.Observing = false;
        return stage;
    }

    [Fact]
    public void Fake_quantization_is_the_dequantized_code_and_the_gradient_passes_exactly_where_the_code_is_not_clamped()
    {
        FakeQuantize stage = Stage(-1.3f, 2.9f);
        QuantParams p = stage.Activation;
        Assert.Equal(Quantizer.ToActivation((-1.3f, 2.9f)), p);
        float lowest = p.Dequantize(0), highest = p.Dequantize(255);
        // Values across the range, beyond both ends, and just inside and outside the half-step rounding margins.
        float[] values = [.. TestData.Uniform(500, 7, -3f, 5f), lowest, highest, lowest - 0.49f * p.Scale, highest + 0.49f * p.Scale,
            lowest - 0.51f * p.Scale, highest + 0.51f * p.Scale, 0f, -10f, 10f];
        var input = new FloatTensor(values, [1, values.Length]);
        FloatTensor output = stage.Forward(input);
        float[] upstream = TestData.Uniform(values.Length, 8);
        float[] gradient = stage.Backward(new FloatTensor(upstream, [1, values.Length]))!.Data.ToArray();
        int passed = 0, stopped = 0;
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(p.Dequantize(p.Quantize(values[i])), output.Data[i]);
            // Inside [s (0 - z), s (255 - z)] widened by the half step that still rounds onto an end code: passed.
            bool inside = values[i] >= lowest - 0.5f * p.Scale && values[i] <= highest + 0.5f * p.Scale;
            Assert.Equal(inside ? upstream[i] : 0f, gradient[i]);
            passed += inside ? 1 : 0;
            stopped += inside ? 0 : 1;
        }
        Assert.True(passed > 100 && stopped > 100, $"{passed} passed, {stopped} stopped: both sides must be exercised");
    }

    [Fact]
    public void Where_fake_quantization_is_differentiable_its_backward_matches_finite_differences()
    {
        // Beyond the clamp the output is constant: finite differences give 0, and so must the estimator.
        FakeQuantize stage = Stage(-1f, 1f);
        float[] outside = [.. TestData.Uniform(64, 3, 1.2f, 3f), .. TestData.Uniform(64, 4, -3f, -1.2f)];
        GradientCheck.Layer(stage, new FloatTensor(outside, [2, 64]), seed: 5);
        // Observe-only (the int32-accumulator logits): the identity.
        GradientCheck.Layer(Stage(-1f, 1f, quantize: false), TestData.FloatTensor(6, 3, 17), seed: 6);
        // The pool rounding's estimator is the identity; its forward is the identity off the code grid's half steps too.
        Assert.Equal(TestData.Uniform(10, 9), new FakeQuantizePoolRounding(Stage(-1f, 1f, quantize: false), 2)
            .Forward(new FloatTensor(TestData.Uniform(10, 9), [1, 10])).Data.ToArray());
    }

    [Fact]
    public void Observers_follow_the_activations_only_while_observing()
    {
        var stage = new FakeQuantize(new MinMaxObserver());
        stage.Forward(new FloatTensor([0f, 2f], [1, 2]));
        Assert.Equal((0f, 2f), stage.Observer.Range);
        stage.Observing = false;
        FloatTensor output = stage.Forward(new FloatTensor([0f, 8f], [1, 2]));
        Assert.Equal((0f, 2f), stage.Observer.Range);
        Assert.Equal(2f, output.Data[1], 5);                // clamped to the frozen range
        Assert.Throws<InvalidOperationException>(() => new FakeQuantize(new MinMaxObserver()) { Observing = false }
            .Forward(new FloatTensor([1f], [1, 1])));
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(3, 2)]
    public void Pool_rounding_gives_the_integer_average_pool_codes(int kernel, int stride)
    {
        FakeQuantize source = Stage(-0.7f, 3.1f);
        QuantParams p = source.Activation;
        const int channels = 3, size = 12;
        var random = new SeededRandom(11);
        byte[] codes = new byte[2 * channels * size * size];
        for (int i = 0; i < codes.Length; i++)
        {
            // Many equal neighbours make exact half-way means frequent.
            codes[i] = (byte)(i % 5 == 0 ? 255 : random.NextUniform(0f, 1f) < 0.5f ? p.ZeroPoint : random.NextUniform(0f, 255.99f));
        }
        var input = new FloatTensor(codes.Select(q => p.Dequantize(q)).ToArray(), [2, channels, size, size]);
        var pool = new AvgPool2d(kernel, stride);
        FloatTensor rounded = new FakeQuantizePoolRounding(source, kernel).Forward(pool.Forward(input));
        var g = new ConvGeometry(channels, size, size, kernel, kernel, stride, stride, 0, 0);
        int outSize = channels * g.OutHeight * g.OutWidth;
        byte[] expected = new byte[2 * outSize];
        for (int s = 0; s < 2; s++)
        {
            AvgPoolQ8.Forward(codes.AsSpan(s * channels * size * size, channels * size * size), g, expected.AsSpan(s * outSize, outSize), KernelVariant.Scalar);
        }
        Assert.Equal(expected.Select(q => p.Dequantize(q)).ToArray(), rounded.Data.ToArray());
    }

    private Sequential CopyOfTrained()
    {
        Sequential copy = SeedNetwork.Create(seed: 4, conv1Channels: 8, conv2Channels: 16, hidden: 64);
        foreach (((_, Parameter to), (_, Parameter from)) in copy.NamedParameters().Zip(trained.Network.NamedParameters()))
        {
            from.Value.Data.CopyTo(to.Value.Data);
        }
        return copy;
    }

    [Theory]
    [InlineData(true, 4)]
    [InlineData(false, 6)]
    public void Shadow_weights_train_the_float_values_and_the_integer_network_takes_their_codes(bool perChannel, int bits)
    {
        Sequential network = CopyOfTrained();
        var options = new QuantizationOptions { PerChannel = perChannel, WeightBits = bits };
        var qat = new QuantizationAwareTraining(network, options, ObserverKind.MovingAverage, freezeObserversAfterSteps: 3);
        Assert.Equal(["input_fake_quant", "conv1", "relu1", "conv1_fake_quant", "conv2", "relu2", "conv2_fake_quant", "pool", "pool_fake_quant",
            "flatten", "fc1", "relu3", "fc1_fake_quant", "fc2", "fc2_fake_quant"], qat.Network.Layers.Select(l => l.Name));
        Assert.False(qat.Activations[^1].Quantizes);          // int32-accumulator logits are not requantized
        var weights = new[] { "conv1", "conv2", "fc1", "fc2" }.Select(n => ((WeightedLayer)network[n]).Weight).ToArray();
        float[][] before = weights.Select(w => w.Value.Data.ToArray()).ToArray();

        var recorder = new Recorder(qat, weights, perChannel, bits);
        qat.Train(trained.Calibration, new TrainingOptions { Epochs = 1, LearningRate = 0.01f, WarmupEpochs = 0f },
            test: trained.Test, observer: recorder, cancel: TestContext.Current.CancellationToken);
        Assert.Equal((3000 + 31) / 32, qat.Steps);
        Assert.True(qat.ObserversFrozen);
        Assert.Equal(qat.Steps, recorder.Checked);
        // The frozen ranges are those after step 3: later batches and the test images left them alone.
        Assert.Equal(recorder.RangesAtFreeze, qat.ActivationRanges);
        Assert.True(qat.WeightsFakeQuantized);
        for (int k = 0; k < weights.Length; k++)
        {
            Assert.NotEqual(before[k], weights[k].Value.Data.ToArray());
        }

        QuantizedNetwork quantized = qat.ToQuantizedNetwork([1, 32, 32], MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd);
        Assert.True(qat.WeightsFakeQuantized);
        float[][] fake = weights.Select(w => w.Value.Data.ToArray()).ToArray();
        qat.RestoreFloatWeights();
        var layers = quantized.Layers.OfType<QuantizedWeightedLayer>().ToArray();
        for (int k = 0; k < weights.Length; k++)
        {
            var expected = Quantizer.QuantizeWeights(weights[k].Value.Data, weights[k].Value.Dim(0), perChannel, bits);
            Assert.Equal(expected.Codes, layers[k].Weights.ToArray());
            Assert.NotEqual(fake[k], weights[k].Value.Data.ToArray());
        }
        Assert.Equal(Quantizer.ToActivation(qat.ActivationRanges[0]), quantized.Input);
        Assert.Equal(Quantizer.ToActivation(qat.ActivationRanges[2]), layers[1].Output);
    }

    // Checks at every step that the gradients were computed at the fake-quantized weights and that the optimiser
    // step sees the float ones.
    private sealed class Recorder(QuantizationAwareTraining qat, Parameter[] weights, bool perChannel, int bits) : ITrainingObserver
    {
        private float[][] _fakeBeforeStep = [];

        public int Checked { get; private set; }

        public IReadOnlyList<(float Min, float Max)>? RangesAtFreeze { get; private set; }

        public void OnGradients(Sequential network)
        {
            // Called after QAT's own hook: the floats are back, and their fake quantization is what the forward pass used.
            Assert.False(qat.WeightsFakeQuantized);
            for (int k = 0; k < weights.Length; k++)
            {
                float[] fake = new float[weights[k].Value.Length];
                Quantizer.FakeQuantizeWeights(weights[k].Value.Data, weights[k].Value.Dim(0), perChannel, bits, fake);
                Assert.Equal(_fakeBeforeStep.Length == 0 ? fake : _fakeBeforeStep[k], fake);
            }
        }

        public void OnStep(Sequential network)
        {
            Assert.True(qat.WeightsFakeQuantized);
            _fakeBeforeStep = weights.Select(w => w.Value.Data.ToArray()).ToArray();
            if (qat.Steps == 3)
            {
                Assert.True(qat.ObserversFrozen);
                RangesAtFreeze = qat.ActivationRanges;
            }
            Checked++;
        }
    }

    [Fact]
    public void The_integer_network_from_a_qat_model_predicts_what_its_fake_quantized_forward_does()
    {
        Sequential network = CopyOfTrained();
        var qat = new QuantizationAwareTraining(network, new QuantizationOptions { WeightBits = 4 }, freezeObserversAfterSteps: 20);
        qat.Train(trained.Calibration, new TrainingOptions { Epochs = 1, LearningRate = 0.01f, WarmupEpochs = 0f },
            cancel: TestContext.Current.CancellationToken);
        int[] qatPredictions = Evaluation.Predictions(qat.Network, trained.Test);
        QuantizedNetwork quantized = qat.ToQuantizedNetwork([1, 32, 32], MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd);
        (float accuracy, int[] int8Predictions) = quantized.Evaluate(trained.Test);
        int agree = qatPredictions.Zip(int8Predictions).Count(p => p.First == p.Second);
        Assert.True(agree >= 495, $"top-1 agreement {agree}/500 between the fake-quantized forward and the integer network");
        Assert.True(accuracy > 0.85f, $"4-bit QAT model scores {accuracy}");
    }

    [Fact]
    public void Quantizing_with_given_ranges_checks_their_number()
    {
        var error = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(trained.Network, [(0f, 1f), (0f, 2f)], [1, 32, 32], 0f, 1f));
        Assert.Contains("5 activation ranges", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new QuantizationAwareTraining(CopyOfTrained(), freezeObserversAfterSteps: 0));
    }
}
