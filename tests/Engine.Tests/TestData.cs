using Engine.Tensors;

namespace Engine.Tests;

/// <summary>Seeded random inputs for tests.</summary>
internal static class TestData
{
    public static float[] Uniform(int length, ulong seed, float low = -1f, float high = 1f)
    {
        var random = new SeededRandom(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = random.NextUniform(low, high);
        }
        return values;
    }

    /// <summary>Values bounded away from zero, so ReLU kinks are farther than a finite-difference step.</summary>
    public static float[] AwayFromZero(int length, ulong seed, float margin = 0.05f)
    {
        float[] values = Uniform(length, seed);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = MathF.CopySign(margin + MathF.Abs(values[i]), values[i]);
        }
        return values;
    }

    public static FloatTensor FloatTensor(ulong seed, params int[] shape)
    {
        var t = new FloatTensor(shape);
        Uniform(t.Length, seed).CopyTo(t.Data);
        return t;
    }

    /// <summary>Uniform values in [-1, 1], the same for the same batch: calibration images for tests (labels 0).</summary>
    public sealed class RandomImages(int[] sampleShape, int count) : Engine.Data.IBatchSource
    {
        public int Count => count;

        public int[] SampleShape => sampleShape;

        public int FillBatch(int epoch, int batchIndex, int batchSize, Span<float> inputs, Span<int> labels)
        {
            int n = Math.Min(batchSize, count - batchIndex * batchSize);
            int size = sampleShape.Aggregate(1, (p, d) => p * d);
            Uniform(n * size, (ulong)(1000 + batchIndex)).CopyTo(inputs);
            labels[..n].Clear();
            return n;
        }
    }
}
