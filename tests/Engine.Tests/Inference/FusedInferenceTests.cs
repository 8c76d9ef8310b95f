using System.Runtime.InteropServices;
using Engine.Kernels;
using Engine.Layers;

namespace Engine.Tests.Inference;

public class FusedInferenceTests
{
    public static TheoryData<string> Networks() => ["seed", "pruned", "odd"];

    [Theory]
    [MemberData(nameof(Networks))]
    public void Fused_steps_equal_the_layers_run_one_by_one_bit_for_bit(string name)
    {
        (Sequential network, int[] sample, int fusedExpected) = Build(name);
        var fused = new InferenceNetwork(network, sample, 0f, 1f, fuse: true);
        var layered = new InferenceNetwork(network, sample, 0f, 1f, fuse: false);
        Assert.Equal(0, layered.FusedLayers);
        // Fusion needs the direct or implicit convolution (AVX2 + FMA); elsewhere every layer runs alone, which is allowed.
        Assert.Equal(GemmF32.HasAvx2Fma ? fusedExpected : 0, fused.FusedLayers);
        foreach (int batch in new[] { 1, 3, 17 })
        {
            float[] x = TestData.Uniform(batch * fused.InputLength, (ulong)(50 + batch));
            float[] expected = Predict(layered, x, batch, threads: 1);
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Assert.True(BitsEqual(expected, Predict(fused, x, batch, threads)), $"{name}, batch {batch}, {threads} threads");
            }
        }
    }

    public static TheoryData<string> ChainedNetworks() => ["seed", "pruned", "chained-odd"];

    [Theory]
    [MemberData(nameof(ChainedNetworks))]
    public void Chained_conv1_into_winograd_equals_the_two_fused_steps_bit_for_bit(string name)
    {
        (Sequential network, int[] sample, _) = Build(name);
        var chained = new InferenceNetwork(network, sample, 0f, 1f, fuse: true, chain: true);
        var separate = new InferenceNetwork(network, sample, 0f, 1f, fuse: true, chain: false);
        Assert.Equal(0, separate.ChainedSteps);
        // The chained step needs the direct kernel and Winograd (AVX2 + FMA); elsewhere nothing is chained.
        Assert.Equal(GemmF32.HasAvx2Fma ? 1 : 0, chained.ChainedSteps);
        foreach (int batch in new[] { 1, 2, 5, 16 })
        {
            float[] x = TestData.Uniform(batch * chained.InputLength, (ulong)(70 + batch));
            float[] expected = Predict(separate, x, batch, threads: 1);
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Assert.True(BitsEqual(expected, Predict(chained, x, batch, threads)), $"{name}, batch {batch}, {threads} threads");
            }
            // Called again on the same workspaces: the padded grid's border must still be zero.
            Assert.True(BitsEqual(expected, Predict(chained, x, batch, threads: 1)), $"{name}, batch {batch}, second call");
        }
    }

    [Fact]
    public void Batch_one_outputs_equal_the_same_samples_inside_a_batch_bit_for_bit()
    {
        // Batch 1 takes the one-row linear kernel and splits layers between threads; a batch takes the packed GEMM.
        (Sequential network, int[] sample, _) = Build("seed");
        var model = new InferenceNetwork(network, sample, 0f, 1f);
        const int batch = 9;
        float[] x = TestData.Uniform(batch * model.InputLength, 60);
        float[] whole = Predict(model, x, batch, threads: 1);
        foreach (int threads in new[] { 1, 2 })
        {
            for (int n = 0; n < batch; n++)
            {
                float[] alone = Predict(model, x.AsSpan(n * model.InputLength, model.InputLength).ToArray(), 1, threads);
                Assert.True(BitsEqual(whole.AsSpan(n * model.OutputLength, model.OutputLength), alone), $"sample {n}, {threads} threads");
            }
        }
    }

    private static (Sequential Network, int[] Sample, int FusedLayers) Build(string name)
    {
        switch (name)
        {
            case "seed":
                return (SeedNetwork.Create(seed: 3), [1, 32, 32], 5);
            case "pruned":
                // conv2 with 32 filters, as after 50% structured pruning: the partial 6-row tiles of the implicit kernel.
                return (SeedNetwork.Create(seed: 4, conv2Channels: 32), [1, 32, 32], 5);
            case "chained-odd":
                // conv1: depth 18 on the direct kernel, ReLU; conv2: 8 -> 16 by Winograd on a 10 x 14 image (3 x 4 tiles, the
                // last row and column of tiles cut by the image's edge), then a pool of 2.
                var chainedNetwork = new Sequential(
                    ("conv1", new Conv2d(2, 8, 3, stride: 1, padding: 1)), ("relu1", new ReLU()),
                    ("conv2", new Conv2d(8, 16, 3, stride: 1, padding: 1)), ("relu2", new ReLU()), ("pool2", new AvgPool2d(2)),
                    ("flatten", new Flatten()), ("fc", new Linear(16 * 5 * 7, 3)));
                chainedNetwork.Initialize(new SeededRandom(6));
                return (chainedNetwork, [2, 10, 14], 5);
            default:
                // conv1: depth 18 (direct kernel), ReLU only; conv2: depth 45 (implicit), a pool of 3 without ReLU that drops
                // the last row and two columns (floor mode); conv3: depth 63 on a width of 8 (neither kernel: not fused).
                var network = new Sequential(
                    ("conv1", new Conv2d(2, 5, 3, stride: 1, padding: 1)), ("relu1", new ReLU()),
                    ("conv2", new Conv2d(5, 7, 3, stride: 1, padding: 1)), ("pool1", new AvgPool2d(3)),
                    ("conv3", new Conv2d(7, 4, 3, stride: 1, padding: 0)), ("relu3", new ReLU()),
                    ("flatten", new Flatten()), ("fc", new Linear(4 * 1 * 8, 3)));
                network.Initialize(new SeededRandom(5));
                return (network, [2, 10, 32], 4);
        }
    }

    private static float[] Predict(InferenceNetwork model, float[] x, int batch, int threads)
    {
        float[] y = new float[batch * model.OutputLength];
        model.Predict(x, batch, y, threads);
        return y;
    }

    private static bool BitsEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        MemoryMarshal.Cast<float, int>(a).SequenceEqual(MemoryMarshal.Cast<float, int>(b));
}
