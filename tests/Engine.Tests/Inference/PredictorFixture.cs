using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tests.Data;

namespace Engine.Tests.Inference;

/// <summary>
/// A small seed-shaped network (random weights: the tests compare paths, not accuracy), its int8 version calibrated
/// on real digits, both as model-file bytes, and real digits as inputs.
/// </summary>
public sealed class PredictorFixture
{
    public const int InputLength = 1024, Classes = 10;

    public PredictorFixture()
    {
        Network = SeedNetwork.Create(seed: 21, conv1Channels: 4, conv2Channels: 8, hidden: 16);
        float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
        Inputs = new float[200 * InputLength];
        IBatchSource digits = BatchIterator.Sequential(BundledMnist.Test, 200, mean, std);
        digits.FillBatch(0, 0, 200, Inputs, new int[200]);
        QuantizedNetwork int8 = Quantizer.Quantize(Network, new InMemoryBatches(Inputs, [1, 32, 32]), 200, mean, std);
        FloatBytes = ModelFile.ToBytes(Network, mean, std, [1, 32, 32]);
        Int8Bytes = QuantizedModelFile.ToBytes(int8);
    }

    /// <summary>The float network (its training forward pass is the reference the inference path is checked against).</summary>
    public Sequential Network { get; }

    /// <summary>200 normalised test digits, [200, 1, 32, 32].</summary>
    public float[] Inputs { get; }

    public byte[] FloatBytes { get; }

    public byte[] Int8Bytes { get; }

    public byte[] Bytes(ModelFormat format) => format == ModelFormat.Float ? FloatBytes : Int8Bytes;

    public ReadOnlySpan<float> Samples(int first, int count) => Inputs.AsSpan(first * InputLength, count * InputLength);
}
