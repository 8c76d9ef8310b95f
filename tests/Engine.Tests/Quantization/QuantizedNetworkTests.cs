using Engine.Tests.Inference;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Pruning;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Tests.Quantization;

/// <summary>A small network trained once on real digits, shared by the tests that need learned weights.</summary>
public sealed class TrainedDigitsFixture
{
    private static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "data", "mnist");

    public TrainedDigitsFixture()
    {
        float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
        MnistDataset trainSet = MnistDataset.Load(DataDirectory, MnistSplit.Train).Take(3000);
        Test = BatchIterator.Sequential(MnistDataset.Load(DataDirectory, MnistSplit.Test).Take(500), 100, mean, std);
        Calibration = BatchIterator.Sequential(trainSet, 100, mean, std);
        Network = SeedNetwork.Create(seed: 4, conv1Channels: 8, conv2Channels: 16, hidden: 64);
        var options = new TrainingOptions { Epochs = 3, BatchSize = 32, LearningRate = 0.05f, Seed = 4, WarmupEpochs = 0.25f, LabelSmoothing = 0f };
        new Trainer(Network, options).Run(BatchIterator.Shuffled(trainSet, 32, seed: 4, epoch: 0, mean, std, maxShift: 1));
    }

    public Sequential Network { get; }

    public BatchIterator Test { get; }

    public BatchIterator Calibration { get; }

    /// <summary>Float logits and arg-max predictions on the test images.</summary>
    public (float[] Logits, int[] Predictions, float Accuracy) FloatResults()
    {
        IBatchSource source = Test;
        var inputs = new FloatTensor([100, .. source.SampleShape]);
        int[] labels = new int[100];
        var logits = new List<float>();
        var predictions = new List<int>();
        int correct = 0;
        for (int b = 0; b < 5; b++)
        {
            source.FillBatch(0, b, 100, inputs.Data, labels);
            FloatTensor output = Network.Forward(inputs);
            for (int n = 0; n < 100; n++)
            {
                int p = ClassScores.ArgMax(output.Data.Slice(n * 10, 10));
                predictions.Add(p);
                correct += p == labels[n] ? 1 : 0;
            }
            logits.AddRange(output.Data.ToArray());
        }
        return ([.. logits], [.. predictions], correct / 500f);
    }

    public float[] TestInputs(int count)
    {
        IBatchSource source = Test;
        float[] inputs = new float[count * 1024];
        source.FillBatch(0, 0, count, inputs, new int[count]);
        return inputs;
    }
}

public class QuantizedNetworkTests(TrainedDigitsFixture trained) : IClassFixture<TrainedDigitsFixture>
{
    private QuantizedNetwork Quantize(bool perChannel = true, LogitsMode logits = LogitsMode.Int32Accumulator, ObserverKind observer = ObserverKind.MinMax) =>
        Quantizer.Quantize(trained.Network, trained.Calibration, 500, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd,
            new QuantizationOptions { PerChannel = perChannel, Logits = logits, Observer = observer });

    [Theory]
    [InlineData(true, LogitsMode.Int32Accumulator, ObserverKind.MinMax)]
    [InlineData(true, LogitsMode.DequantizedOutput, ObserverKind.Percentile)]
    [InlineData(false, LogitsMode.Int32Accumulator, ObserverKind.MovingAverage)]
    public void Int8_agrees_with_float_on_test_digits(bool perChannel, LogitsMode logits, ObserverKind observer)
    {
        (float[] floatLogits, int[] floatPredictions, float floatAccuracy) = trained.FloatResults();
        Assert.True(floatAccuracy > 0.85f, $"the float network scores only {floatAccuracy}: the comparison would prove little");
        QuantizedNetwork q = Quantize(perChannel, logits, observer);
        (float accuracy, int[] predictions) = q.Evaluate(trained.Test);
        int agree = predictions.Zip(floatPredictions).Count(p => p.First == p.Second);
        Assert.True(agree >= 490, $"top-1 agreement {agree}/500");
        Assert.True(Math.Abs(accuracy - floatAccuracy) <= 0.01f, $"int8 accuracy {accuracy} vs float {floatAccuracy}");

        float[] int8Logits = new float[floatLogits.Length];
        float[] inputs = new float[500 * 1024];
        ((IBatchSource)trained.Test).FillBatch(0, 0, 500, inputs, new int[500]);
        q.Predict(inputs, 500, int8Logits);
        float range = floatLogits.Max() - floatLogits.Min();
        ErrorSummary error = ErrorSummary.Of(int8Logits, floatLogits);
        // Stated bound: the logits stay within 10% of their float range at worst and 2% in RMS.
        Assert.True(error.Max < 0.10 * range && error.Rms < 0.02 * range, $"logit error max {error.Max}, rms {error.Rms}, range {range}");
    }

    [Fact]
    public void A_structurally_pruned_network_quantizes_like_any_other()
    {
        PruningPlan plan = NeuronImportance.Rank(trained.Network, [1, 32, 32], PruningCriterion.L1, 0.5, ["conv2", "fc1"]);
        Sequential pruned = StructuredPruner.Apply(trained.Network, plan, [1, 32, 32]);
        QuantizedNetwork q = Quantizer.Quantize(pruned, trained.Calibration, 500, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd);
        Assert.Equal(8, ((QuantizedConv2d)q.Layers[1]).OutFeatures);
        Assert.Equal(32, ((QuantizedLinear)q.Layers[4]).OutFeatures);

        float[] inputs = trained.TestInputs(100);
        var x = new FloatTensor(100, 1, 32, 32);
        inputs.CopyTo(x.Data);
        FloatTensor floatLogits = pruned.Forward(x);
        float[] int8Logits = new float[1000];
        q.Predict(inputs, 100, int8Logits);
        int agree = Enumerable.Range(0, 100).Count(n =>
            ClassScores.ArgMax(floatLogits.Data.Slice(n * 10, 10)) == ClassScores.ArgMax(int8Logits.AsSpan(n * 10, 10)));
        Assert.True(agree >= 97, $"pruned network: top-1 agreement {agree}/100");
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count_or_the_batch_split()
    {
        QuantizedNetwork q = Quantize();
        float[] inputs = trained.TestInputs(37);
        float[] two = new float[370], one = new float[370], single = new float[10];
        q.Predict(inputs, 37, two, threads: 2);
        q.Predict(inputs, 37, one, threads: 1);
        Assert.Equal(one, two);
        q.Predict(inputs.AsSpan(36 * 1024, 1024), single);
        Assert.Equal(one.AsSpan(360, 10).ToArray(), single);
    }


    [Fact]
    public void Save_and_load_give_the_same_network_bit_for_bit()
    {
        foreach (bool perChannel in new[] { true, false })
        {
            QuantizedNetwork q = Quantize(perChannel, perChannel ? LogitsMode.Int32Accumulator : LogitsMode.DequantizedOutput);
            string path = Path.Combine(Path.GetTempPath(), $"engine-int8-{Guid.NewGuid():N}.safetensors");
            try
            {
                QuantizedModelFile.Save(q, path);
                QuantizedNetwork loaded = QuantizedModelFile.Load(path);
                float[] inputs = trained.TestInputs(20);
                float[] a = new float[200], b = new float[200];
                q.Predict(inputs, 20, a);
                loaded.Predict(inputs, 20, b);
                Assert.Equal(a, b);
                Assert.Equal(QuantizedModelFile.ToBytes(q), File.ReadAllBytes(path));
                Assert.Equal(QuantizedModelFile.DescribeArchitecture(q), QuantizedModelFile.DescribeArchitecture(loaded));
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    [Fact]
    public void The_file_uses_the_contract_names_and_types()
    {
        SafeTensorsFile file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(Quantize()), "int8");
        Assert.Equal("engine.int8", file.Metadata["format"]);
        Assert.Equal("uint8", file.Metadata["activation_dtype"]);
        Assert.Equal("half_away_from_zero", file.Metadata["rounding"]);
        Assert.Equal("int32_accumulator", file.Metadata["logits"]);
        foreach (string layer in new[] { "conv1", "conv2", "fc1", "fc2" })
        {
            Assert.Equal(SafeTensorDType.I8, file[$"{layer}.weight"].DType);
            Assert.Equal(trained.Network[layer].Parameters[0].Value.Shape.ToArray(), file[$"{layer}.weight"].Shape);
            int outputs = file[$"{layer}.weight"].Shape[0];
            Assert.Equal([outputs], file[$"{layer}.weight_scale"].Shape);
            Assert.All(file[$"{layer}.weight_zero_point"].ToInt32s(), z => Assert.Equal(0, z));
            Assert.Equal(SafeTensorDType.I32, file[$"{layer}.bias"].DType);
            foreach (string a in new[] { "input", "output" })
            {
                Assert.Equal(SafeTensorDType.F32, file[$"{layer}.{a}_scale"].DType);
                Assert.Equal(SafeTensorDType.I32, file[$"{layer}.{a}_zero_point"].DType);
            }
        }
        // A layer's input is what the previous weighted layer produced (pooling and flatten keep scale and zero point).
        Assert.Equal(file["conv2.output_scale"].ToFloats(), file["fc1.input_scale"].ToFloats());
    }

    [Fact]
    public void Float_and_int8_files_are_not_mistaken_for_each_other()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"engine-formats-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string floatPath = Path.Combine(dir, "float.safetensors"), int8Path = Path.Combine(dir, "int8.safetensors");
            ModelFile.SaveFloat(trained.Network, floatPath, 0.1f, 0.3f, [1, 32, 32]);
            QuantizedModelFile.Save(Quantize(), int8Path);
            InvalidDataException asInt8 = Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(floatPath));
            Assert.Contains("float.safetensors", asInt8.Message);
            Assert.Contains("quantize it first", asInt8.Message);
            InvalidDataException asFloat = Assert.Throws<InvalidDataException>(() => ModelFile.LoadFloat(int8Path));
            Assert.Contains("engine.int8", asFloat.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Damaged_int8_files_name_the_tensor_at_fault()
    {
        QuantizedNetwork q = Quantize();
        SafeTensorsFile file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(q), "ok");

        InvalidDataException Load(Func<SafeTensor, SafeTensor?> edit, Dictionary<string, string>? metadata = null)
        {
            var tensors = file.Tensors.Select(edit).OfType<SafeTensor>().ToList();
            byte[] bytes = new SafeTensorsFile(tensors, metadata ?? file.Metadata.ToDictionary()).ToBytes();
            return Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(bytes, "bad.safetensors"));
        }

        Assert.Contains("'fc1.bias' is missing", Load(t => t.Name == "fc1.bias" ? null : t).Message);
        Assert.Contains("'conv2.input_scale'", Load(t => t.Name == "conv2.input_scale" ? SafeTensor.FromFloats(t.Name, [1], [0.5f]) : t).Message);
        Assert.Contains("'conv1.output_scale'", Load(t => t.Name == "conv1.output_scale" ? SafeTensor.FromFloats(t.Name, [1], [-1f]) : t).Message);
        Assert.Contains("'fc2.weight_scale'", Load(t => t.Name == "fc2.weight_scale" ? SafeTensor.FromFloats(t.Name, [3], [1f, 1f, 1f]) : t).Message);
        Assert.Contains("'fc1.weight' is F32", Load(t => t.Name == "fc1.weight" ? SafeTensor.FromFloats(t.Name, [128], new float[128]) : t).Message);
        byte[] withExtra = new SafeTensorsFile([.. file.Tensors, SafeTensor.FromInt32s("extra", [1], [0])], file.Metadata).ToBytes();
        Assert.Contains("unexpected tensor 'extra'", Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(withExtra, "bad.safetensors")).Message);
        var badRounding = file.Metadata.ToDictionary();
        badRounding["rounding"] = "half_to_even";
        Assert.Contains("rounding", Load(t => t, badRounding).Message);
        byte[] whole = QuantizedModelFile.ToBytes(q);
        Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(whole.AsSpan(0, whole.Length - 7), "truncated.safetensors"));
    }

    [Fact]
    public void A_quantized_network_equals_an_independent_integer_reference()
    {
        // Random weights, odd sizes, both packing paths (width 9: im2col; width 16: direct), per-tensor asymmetric
        // weights (non-zero weight zero point: the column-sum correction) and per-channel symmetric ones.
        foreach ((int width, bool perChannel) in new[] { (9, false), (16, true), (16, false), (9, true) })
        {
            var random = new SeededRandom((ulong)(width * 10 + (perChannel ? 1 : 0)));
            var conv = new Conv2d(3, 5, 3, 1, 1);
            var fc = new Linear(5 * 7 * width, 6);
            var net = new Sequential(("conv", conv), ("relu", new ReLU()), ("flatten", new Flatten()), ("fc", fc));
            net.Initialize(random);
            conv.Bias.Value.Data[0] = 0.3f;
            var data = new InMemoryBatches(TestData.Uniform(40 * 3 * 7 * width, 5, -1f, 2f), [3, 7, width]);
            QuantizedNetwork q = Quantizer.Quantize(net, data, 40, 0f, 1f,
                new QuantizationOptions { PerChannel = perChannel, Logits = LogitsMode.DequantizedOutput });

            float[] inputs = TestData.Uniform(4 * 3 * 7 * width, 77, -1.5f, 2.5f);   // beyond the calibrated range: clamping too
            float[] logits = new float[4 * 6];
            q.Predict(inputs, 4, logits);

            var qc = (QuantizedConv2d)q.Layers[0];
            var qf = (QuantizedLinear)q.Layers[2];
            for (int s = 0; s < 4; s++)
            {
                int[] x = inputs.AsSpan(s * 3 * 7 * width, 3 * 7 * width).ToArray().Select(v => q.Input.Quantize(v)).ToArray();
                int[] hidden = ReferenceConv(qc, x, 7, width);
                int[] output = ReferenceLinear(qf, hidden);
                for (int o = 0; o < 6; o++)
                {
                    Assert.Equal(qf.Output.Dequantize(output[o]), logits[s * 6 + o]);
                }
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_fused_relu_on_the_last_layer_clamps_int32_accumulator_logits_at_zero(bool perChannel)
    {
        // A net ending fc -> relu: float logits are never negative, and the int8 accumulator logits must not be either.
        var random = new SeededRandom(perChannel ? 11UL : 12UL);
        var conv = new Conv2d(2, 4, 3, 1, 1);
        var fc = new Linear(4 * 5 * 6, 12);
        var net = new Sequential(("conv", conv), ("relu1", new ReLU()), ("flatten", new Flatten()), ("fc", fc), ("relu2", new ReLU()));
        net.Initialize(random);
        var data = new InMemoryBatches(TestData.Uniform(60 * 2 * 5 * 6, 21, -1f, 2f), [2, 5, 6]);
        QuantizedNetwork q = Quantizer.Quantize(net, data, 60, 0f, 1f,
            new QuantizationOptions { PerChannel = perChannel, Logits = LogitsMode.Int32Accumulator });
        var qc = (QuantizedConv2d)q.Layers[0];
        var qf = (QuantizedLinear)q.Layers[2];
        Assert.True(qf.FusedRelu);

        const int samples = 20;
        float[] inputs = TestData.Uniform(samples * 2 * 5 * 6, 22, -1f, 2f);
        float[] logits = new float[samples * 12];
        q.Predict(inputs, samples, logits);
        var x = new FloatTensor(samples, 2, 5, 6);
        inputs.CopyTo(x.Data);
        float[] floatLogits = net.Forward(x).Data.ToArray();
        Assert.Equal(0f, floatLogits.Min());
        Assert.True(floatLogits.Count(v => v == 0f) > samples, "the test needs outputs the ReLU clamps");
        Assert.Equal(0f, logits.Min());
        float range = floatLogits.Max();
        ErrorSummary error = ErrorSummary.Of(logits, floatLogits);
        Assert.True(error.Max < 0.10 * range, $"logit error max {error.Max}, range {range}");

        // Bit for bit what the integer reference gives: sx sw[c] (sum of (w - zw)(x - zx) + bias), then the ReLU.
        for (int s = 0; s < samples; s++)
        {
            int[] codes = inputs.AsSpan(s * 60, 60).ToArray().Select(v => q.Input.Quantize(v)).ToArray();
            int[] hidden = ReferenceConv(qc, codes, 5, 6);
            for (int o = 0; o < 12; o++)
            {
                long sum = qf.Bias[o];
                for (int p = 0; p < qf.InFeatures; p++)
                {
                    sum += (long)(qf.Weights[o * qf.InFeatures + p] - qf.WeightZeroPoint(o)) * (hidden[p] - qf.Input.ZeroPoint);
                }
                float expected = MathF.Max(qf.Input.Scale * qf.WeightScale(o) * (float)sum, 0f);
                Assert.Equal(expected, logits[s * 12 + o]);
            }
        }
    }

    // Straight from the definitions, one output at a time: sum over taps of (w - zw)(x - zx), padding reads real 0.
    private static int[] ReferenceConv(QuantizedConv2d layer, int[] x, int h, int w)
    {
        int k = layer.KernelSize, pad = layer.Padding, inC = layer.InChannels;
        int[] y = new int[layer.OutFeatures * h * w];
        for (int c = 0; c < layer.OutFeatures; c++)
        for (int oh = 0; oh < h; oh++)
        for (int ow = 0; ow < w; ow++)
        {
            long sum = layer.Bias[c];
            for (int ic = 0; ic < inC; ic++)
            for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++)
            {
                int ih = oh - pad + ki, iw = ow - pad + kj;
                int xv = ih < 0 || ih >= h || iw < 0 || iw >= w ? layer.Input.ZeroPoint : x[(ic * h + ih) * w + iw];
                sum += (long)(layer.Weights[((c * inC + ic) * k + ki) * k + kj] - layer.WeightZeroPoint(c)) * (xv - layer.Input.ZeroPoint);
            }
            y[(c * h + oh) * w + ow] = Output(layer, c, sum);
        }
        return y;
    }

    private static int[] ReferenceLinear(QuantizedLinear layer, int[] x)
    {
        int[] y = new int[layer.OutFeatures];
        for (int c = 0; c < layer.OutFeatures; c++)
        {
            long sum = layer.Bias[c];
            for (int p = 0; p < layer.InFeatures; p++)
            {
                sum += (long)(layer.Weights[c * layer.InFeatures + p] - layer.WeightZeroPoint(c)) * (x[p] - layer.Input.ZeroPoint);
            }
            y[c] = Output(layer, c, sum);
        }
        return y;
    }

    private static int Output(QuantizedWeightedLayer layer, int c, long sum)
    {
        (int mantissa, int shift) = FixedPoint.QuantizeMultiplier((double)layer.Input.Scale * layer.WeightScale(c) / layer.Output.Scale);
        int scaled = FixedPoint.MultiplyByQuantizedMultiplier(checked((int)sum), mantissa, shift);
        return Math.Clamp(scaled + layer.Output.ZeroPoint, layer.FusedRelu ? layer.Output.ZeroPoint : 0, 255);
    }
}

/// <summary>Allocation counts read the process-wide counter, so they run alone (every thread counts, workers included).</summary>
[Collection(ProcessWideMeasurements.Name)]
public class QuantizedNetworkAllocationTests(TrainedDigitsFixture trained) : IClassFixture<TrainedDigitsFixture>
{
    [Fact]
    public void Predict_allocates_nothing_after_warm_up()
    {
        QuantizedNetwork q = Quantizer.Quantize(trained.Network, trained.Calibration, 500, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd, new QuantizationOptions());
        float[] inputs = trained.TestInputs(16), logits = new float[160];
        q.Predict(inputs, 16, logits, threads: 2);
        q.Predict(inputs.AsSpan(0, 1024), logits.AsSpan(0, 10));
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            q.Predict(inputs, 16, logits, threads: 2);
            q.Predict(inputs.AsSpan(0, 1024), logits.AsSpan(0, 10));
        }));
    }
}
