namespace Engine.Layers;

/// <summary>
/// The seed network (docs/file-formats.md, "Float model file"), with PyTorch's names:
/// <code>
///   x [N, 1, 32, 32] -> conv1 (1->32, 3x3, pad 1) -> ReLU -> conv2 (32->64, 3x3, pad 1) -> ReLU
///     -> avg_pool2d(4, 4) [N, 64, 8, 8] -> flatten [N, 4096] -> fc1 (4096->128) -> ReLU -> fc2 (128->10)
/// </code>
/// </summary>
public static class SeedNetwork
{
    /// <summary>Side of the square input image (MNIST's 28 padded by 2 on each side).</summary>
    public const int InputSize = 32;

    /// <summary>Number of classes.</summary>
    public const int Classes = 10;

    /// <summary>The network with the given widths (the seed's by default), initialised from <paramref name="seed"/>.</summary>
    public static Sequential Create(ulong seed, int conv1Channels = 32, int conv2Channels = 64, int hidden = 128)
    {
        const int pool = 4;
        int pooled = InputSize / pool;
        var network = new Sequential(
            ("conv1", new Conv2d(1, conv1Channels, 3, stride: 1, padding: 1)),
            ("relu1", new ReLU()),
            ("conv2", new Conv2d(conv1Channels, conv2Channels, 3, stride: 1, padding: 1)),
            ("relu2", new ReLU()),
            ("pool", new AvgPool2d(pool, pool)),
            ("flatten", new Flatten()),
            ("fc1", new Linear(conv2Channels * pooled * pooled, hidden)),
            ("relu3", new ReLU()),
            ("fc2", new Linear(hidden, Classes)));
        network.Initialize(new SeededRandom(seed));
        return network;
    }
}
