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
}
