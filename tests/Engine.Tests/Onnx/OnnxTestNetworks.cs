using Engine.Data;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Tests.Onnx;

/// <summary>Networks, inputs and calibration data for the ONNX tests: random weights, seeded.</summary>
internal static class OnnxTestNetworks
{
    /// <summary>The seed network's shape with random weights: conv 3x3 pad 1 twice, pool 4, flatten, two linear layers.</summary>
    public static Sequential Seed(ulong seed = 3) => SeedNetwork.Create(seed, conv1Channels: 8, conv2Channels: 16, hidden: 32);

    /// <summary>Odd shapes: a 5x5 kernel with stride 2 and no padding, a 3x3 stride-1 convolution, no pooling, three input channels.</summary>
    public static Sequential Odd(ulong seed = 5)
    {
        var network = new Sequential(
            ("conv1", new Conv2d(3, 6, 5, stride: 2, padding: 0)),
            ("relu1", new ReLU()),
            ("conv2", new Conv2d(6, 4, 3, stride: 1, padding: 1)),
            ("relu2", new ReLU()),
            ("flatten", new Flatten()),
            ("fc1", new Linear(4 * 7 * 7, 12)),
            ("relu3", new ReLU()),
            ("fc2", new Linear(12, 5)));
        network.Initialize(new SeededRandom(seed));
        return network;
    }

    public static readonly int[] SeedInput = [1, 32, 32];

    public static readonly int[] OddInput = [3, 17, 17];

    /// <summary>A tiny network for the mutation tests: a small file, parsed hundreds of times.</summary>
    public static Sequential Tiny(ulong seed = 7)
    {
        var network = new Sequential(
            ("conv1", new Conv2d(1, 2, 3, stride: 1, padding: 1)),
            ("relu1", new ReLU()),
            ("pool", new AvgPool2d(2, 2)),
            ("flatten", new Flatten()),
            ("fc1", new Linear(2 * 3 * 3, 3)));
        network.Initialize(new SeededRandom(seed));
        return network;
    }

    public static readonly int[] TinyInput = [1, 6, 6];

    public static FloatTensor Inputs(int samples, int[] sampleShape, ulong seed = 11) => TestData.FloatTensor(seed, [samples, .. sampleShape]);

    public static float[] Logits(Sequential network, FloatTensor inputs) => network.Forward(inputs).Data.ToArray();

    public static float[] Logits(QuantizedNetwork network, FloatTensor inputs)
    {
        int samples = inputs.Dim(0);
        float[] logits = new float[samples * network.OutputShape.Aggregate(1, (p, d) => p * d)];
        network.Predict(inputs.Data, samples, logits);
        return logits;
    }

    public static QuantizedNetwork Quantize(Sequential network, int[] sampleShape, bool perChannel = true,
        LogitsMode logits = LogitsMode.Int32Accumulator) =>
        Quantizer.Quantize(network, new TestData.RandomImages(sampleShape, 64), 64, 0.1f, 0.3f,
            new QuantizationOptions { PerChannel = perChannel, Logits = logits, CalibrationBatchSize = 32 });
}
