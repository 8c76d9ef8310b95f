using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Tensors;
using Engine.Tests.Data;

namespace Engine.Tests.Inference;

public class PredictorTests(PredictorFixture fixture) : IClassFixture<PredictorFixture>
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(5, 2)]
    [InlineData(64, 1)]
    [InlineData(64, 2)]
    [InlineData(37, 3)]
    public void Float_inference_matches_the_training_forward_pass(int batch, int threads)
    {
        Predictor model = Predictor.Load(fixture.FloatBytes, "float", new PredictorOptions { Threads = threads });
        float[] actual = new float[batch * PredictorFixture.Classes];
        model.Predict(fixture.Samples(0, batch), batch, actual);
        var input = new FloatTensor(fixture.Samples(0, batch), batch, 1, 32, 32);
        float[] expected = fixture.Network.Forward(input).Data.ToArray();
        AssertClose(expected, actual);
    }

    [Fact]
    public void Float_inference_matches_training_on_shapes_that_take_the_im2col_paths()
    {
        // Stride 2 and a 5x5 kernel on 13 x 11 images: no implicit convolution; odd sizes everywhere.
        var network = new Sequential(
            ("conv1", new Conv2d(2, 3, 5, stride: 2, padding: 1)), ("relu1", new ReLU()),
            ("conv2", new Conv2d(3, 5, 3, stride: 1, padding: 0)), ("relu2", new ReLU()),
            ("pool", new AvgPool2d(2, 1)), ("flatten", new Flatten()),
            ("fc1", new Linear(5 * 3 * 2, 7)), ("relu3", new ReLU()), ("fc2", new Linear(7, 3)));
        network.Initialize(new SeededRandom(8));
        int[] sample = [2, 13, 11];
        Predictor model = Predictor.FromNetwork(network, sample, 0f, 1f, new PredictorOptions { Threads = 2 });
        Assert.Equal([3], model.OutputShape.ToArray());
        foreach (int batch in new[] { 1, 6, 9 })
        {
            FloatTensor x = TestData.FloatTensor((ulong)batch, batch, 2, 13, 11);
            float[] actual = new float[batch * 3];
            model.Predict(x.Data, batch, actual);
            AssertClose(network.Forward(x).Data.ToArray(), actual);
        }
    }

    [Theory]
    [InlineData(ModelFormat.Float)]
    [InlineData(ModelFormat.Int8)]
    public void Results_are_bit_identical_whatever_the_thread_count_and_batch_split(ModelFormat format)
    {
        const int batch = 37;
        float[] reference = Run(Predictor.Load(fixture.Bytes(format), "m", new PredictorOptions { Threads = 1 }), batch);
        foreach (int threads in new[] { 2, 3, 4 })
        {
            Assert.Equal(reference, Run(Predictor.Load(fixture.Bytes(format), "m", new PredictorOptions { Threads = threads }), batch));
        }
        // One sample at a time, and in uneven chunks, on two threads.
        Predictor two = Predictor.Load(fixture.Bytes(format), "m", new PredictorOptions { Threads = 2 });
        float[] pieces = new float[batch * PredictorFixture.Classes];
        int[] chunks = [1, 4, 5, 1, 9, 17];
        for (int start = 0, c = 0; start < batch; start += chunks[c++])
        {
            two.Predict(fixture.Samples(start, chunks[c]), chunks[c], pieces.AsSpan(start * 10, chunks[c] * 10));
        }
        Assert.Equal(reference, pieces);
    }

    [Theory]
    [InlineData(ModelFormat.Float)]
    [InlineData(ModelFormat.Int8)]
    public void Sixteen_threads_sharing_one_model_get_what_one_thread_gets(ModelFormat format)
    {
        // Each caller runs 2,000 calls of mixed batch sizes over the same model; every result must equal, bit for bit,
        // what a lone caller computed for the same samples beforehand.
        Predictor shared = Predictor.Load(fixture.Bytes(format), "shared", new PredictorOptions { Threads = 2 });
        const int samples = 64;
        float[] expected = new float[samples * 10];
        Predictor.Load(fixture.Bytes(format), "alone", new PredictorOptions { Threads = 1 }).Predict(fixture.Samples(0, samples), samples, expected);
        int[] batchSizes = [1, 2, 3, 5, 8, 1, 13];
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            float[] output = new float[16 * 10];
            for (int call = 0; call < 2000 && failures.IsEmpty; call++)
            {
                int batch = batchSizes[(call + t) % batchSizes.Length];
                int first = (call * 7 + t * 3) % (samples - batch + 1);
                Span<float> y = output.AsSpan(0, batch * 10);
                shared.Predict(fixture.Samples(first, batch), batch, y);
                if (!y.SequenceEqual(expected.AsSpan(first * 10, batch * 10)))
                {
                    failures.Add($"thread {t}, call {call}: batch {batch} from sample {first} differs");
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(failures);
    }

    [Theory]
    [InlineData(ModelFormat.Float)]
    [InlineData(ModelFormat.Int8)]
    public void Loads_alike_from_a_path_a_stream_an_unseekable_stream_and_bytes(ModelFormat format)
    {
        string path = Path.Combine(Path.GetTempPath(), $"predictor-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, fixture.Bytes(format));
        try
        {
            float[] fromBytes = Run(Predictor.Load(fixture.Bytes(format)), 3);
            Assert.Equal(fromBytes, Run(Predictor.Load(path), 3));
            using (var stream = File.OpenRead(path))
            {
                Assert.Equal(fromBytes, Run(Predictor.Load(stream, "stream"), 3));
            }
            using (var pipe = new UnseekableStream(fixture.Bytes(format)))
            {
                Assert.Equal(fromBytes, Run(Predictor.Load(pipe, "pipe"), 3));
            }
            Assert.Equal(format, Predictor.DetectFormat(fixture.Bytes(format)));
            using var header = File.OpenRead(path);
            Assert.Equal(format, Predictor.DetectFormat(header, "file"));
            Assert.Equal(0, header.Position);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Shapes_and_preprocessing_come_from_the_file()
    {
        foreach (ModelFormat format in new[] { ModelFormat.Float, ModelFormat.Int8 })
        {
            Predictor model = Predictor.Load(fixture.Bytes(format));
            Assert.Equal(format, model.Format);
            Assert.Equal([1, 32, 32], model.InputShape.ToArray());
            Assert.Equal([10], model.OutputShape.ToArray());
            Assert.Equal(1024, model.InputLength);
            Assert.Equal(10, model.OutputLength);
            Assert.Equal(new InputPreprocessing(MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd, 1, 32, 32), model.Preprocessing);
        }
    }

    [Fact]
    public void Pixels_of_any_size_up_to_the_canvas_become_the_normalised_centred_input()
    {
        Predictor model = Predictor.Load(fixture.FloatBytes);
        MnistDataset digits = BundledMnist.Test;
        byte[] digit = digits.Pixels.AsSpan(0, 784).ToArray();
        float[] ours = new float[1024], reference = new float[1024];
        model.PreparePixels(digit, 28, 28, ours);
        MnistPreprocessing.WriteImage(digit, 28, 28, reference, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd);
        Assert.Equal(reference, ours);
        // A 3 x 5 image lands at rows 14..16, columns 13..17; the rest is the normalised zero.
        byte[] small = [.. Enumerable.Range(1, 15).Select(v => (byte)(v * 17))];
        model.PreparePixels(small, 3, 5, ours);
        float background = (0f - MnistPreprocessing.DefaultMean) / MnistPreprocessing.DefaultStd;
        Assert.Equal(background, ours[0]);
        Assert.Equal((small[0] / 255f - MnistPreprocessing.DefaultMean) / MnistPreprocessing.DefaultStd, ours[14 * 32 + 13]);
        Assert.Equal((small[14] / 255f - MnistPreprocessing.DefaultMean) / MnistPreprocessing.DefaultStd, ours[16 * 32 + 17]);
        Assert.Equal(background, ours[16 * 32 + 18]);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.PreparePixels(new byte[33 * 33], 33, 33, ours));
        Assert.Throws<ArgumentException>(() => model.PreparePixels(new byte[10], 3, 5, ours));
    }

    [Theory]
    [InlineData(ModelFormat.Float)]
    [InlineData(ModelFormat.Int8)]
    public void Classify_and_top_k_read_the_scores(ModelFormat format)
    {
        Predictor model = Predictor.Load(fixture.Bytes(format));
        float[] scores = new float[10];
        for (int n = 0; n < 20; n++)
        {
            ReadOnlySpan<float> x = fixture.Samples(n, 1);
            model.Predict(x, scores);
            Assert.Equal(ClassScores.ArgMax(scores), model.Classify(x));
            int[] top = new int[3];
            float[] topScores = new float[3];
            Assert.Equal(3, model.TopK(x, top, topScores));
            Assert.Equal(model.Classify(x), top[0]);
            Assert.True(topScores[0] >= topScores[1] && topScores[1] >= topScores[2]);
            Assert.Equal([.. scores.Select((s, i) => (s, i)).OrderByDescending(p => p.s).ThenBy(p => p.i).Take(3).Select(p => p.i)], top);
        }
    }

    [Fact]
    public void Files_that_are_not_models_are_refused_with_the_reason()
    {
        Assert.Contains("not a model file", Assert.Throws<InvalidDataException>(() => Predictor.Load("hello, world\n"u8, "notes.txt")).Message);
        Assert.Contains("notes.txt", Assert.Throws<InvalidDataException>(() => Predictor.Load("hello, world\n"u8, "notes.txt")).Message);
        byte[] onnx = [0x08, 0x07, 0x12, 0x04, (byte)'t', (byte)'e', (byte)'s', (byte)'t'];
        Assert.Equal(ModelFormat.Onnx, Predictor.DetectFormat(onnx));
        Assert.Contains("Engine.Onnx", Assert.Throws<InvalidDataException>(() => Predictor.Load(onnx, "model.onnx")).Message);
        var stats = new SafeTensorsFile([SafeTensor.FromFloats("x", [1], [1f])], new Dictionary<string, string> { ["format"] = GradientStatisticsFile.Format });
        Assert.Contains("gradient statistics", Assert.Throws<InvalidDataException>(() => Predictor.Load(stats.ToBytes(), "stats")).Message);
        string directory = Directory.CreateTempSubdirectory().FullName;
        try
        {
            Assert.Contains("is a directory", Assert.Throws<FileNotFoundException>(() => Predictor.Load(directory)).Message);
        }
        finally
        {
            Directory.Delete(directory);
        }
        byte[] truncated = fixture.Int8Bytes.AsSpan(0, fixture.Int8Bytes.Length - 5).ToArray();
        Assert.Contains("cut.safetensors", Assert.Throws<InvalidDataException>(() => Predictor.Load(truncated, "cut.safetensors")).Message);
    }

    [Theory]
    [InlineData(ModelFormat.Float, float.NaN)]
    [InlineData(ModelFormat.Int8, float.NaN)]
    [InlineData(ModelFormat.Float, float.PositiveInfinity)]
    [InlineData(ModelFormat.Int8, float.NegativeInfinity)]
    public void Non_finite_inputs_are_refused_alike_on_both_paths_naming_sample_and_element(ModelFormat format, float bad)
    {
        // float used to spread one NaN pixel to every logit while int8 mapped it to the zero point.
        Predictor model = Predictor.Load(fixture.Bytes(format), "model", new PredictorOptions { Threads = 2 });
        float[] inputs = fixture.Samples(0, 4).ToArray();
        inputs[2 * 1024 + 37] = bad;
        inputs[3 * 1024 + 5] = bad;                     // the first one is named
        float[] outputs = Enumerable.Repeat(-7f, 40).ToArray();
        ArgumentException e = Assert.Throws<ArgumentException>(() => model.Predict(inputs, 4, outputs));
        Assert.Equal("inputs", e.ParamName);
        Assert.Contains("sample 2, element 37", e.Message);
        Assert.Contains(bad.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.All(outputs, v => Assert.Equal(-7f, v));  // nothing written
        float[] one = inputs.AsSpan(2 * 1024, 1024).ToArray();
        Assert.Contains("sample 0, element 37", Assert.Throws<ArgumentException>(() => model.Predict(one, new float[10])).Message);
        Assert.Throws<ArgumentException>(() => model.Classify(one));
        Assert.Throws<ArgumentException>(() => model.TopK(one, new int[3]));

        // Finite inputs, extreme ones included, still run.
        one[37] = float.MaxValue;
        one[38] = -float.MaxValue;
        float[] logits = new float[10];
        model.Predict(one, logits);
        Assert.Equal(10, logits.Length);
    }

    [Fact]
    public void Wrong_buffer_sizes_are_refused_before_any_work()
    {
        Predictor model = Predictor.Load(fixture.FloatBytes);
        Assert.Throws<ArgumentException>(() => model.Predict(new float[1023], new float[10]));
        Assert.Throws<ArgumentException>(() => model.Predict(new float[1024], new float[9]));
        Assert.Throws<ArgumentException>(() => model.Predict(new float[2048], 1, new float[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PredictorOptions { Threads = 0 });
    }

    [Fact]
    public void A_predictor_made_from_a_network_keeps_its_own_copy()
    {
        Sequential network = SeedNetwork.Create(seed: 3, conv1Channels: 2, conv2Channels: 2, hidden: 4);
        Predictor model = Predictor.FromNetwork(network, [1, 32, 32], 0f, 1f);
        float[] before = Run(model, 2);
        network.Initialize(new SeededRandom(99));   // training on would change these weights
        Assert.Equal(before, Run(model, 2));
    }

    private float[] Run(Predictor model, int batch)
    {
        float[] output = new float[batch * model.OutputLength];
        model.Predict(fixture.Samples(0, batch), batch, output);
        return output;
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = expected.Max(MathF.Abs);
        for (int i = 0; i < expected.Length; i++)
        {
            // Same products, summed in another order (GEMM panels against dot products): a few ulps of the largest logit.
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(scale, 1f), $"output {i}: {expected[i]} against {actual[i]}");
        }
    }

    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public override bool CanSeek => false;
    }
}
