using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>The inputs every benchmark uses: a seeded batch of images with pixel-like values in [0, 1).</summary>
internal static class BenchmarkInputs
{
    public static FloatTensor Images(int batch)
    {
        var images = new FloatTensor(batch, 1, 32, 32);
        var random = new SeededRandom(2);
        for (int i = 0; i < images.Length; i++)
        {
            images.Data[i] = random.NextUniform(0f, 1f);
        }
        return images;
    }
}
