using Engine.Layers;
using Engine.Tensors;
using Engine.Tests.Inference;
using Engine.Training;

namespace Engine.Tests.Training;

[Collection(ProcessWideMeasurements.Name)]
public class TrainingStepAllocationTests
{
    private static (Sequential Network, Func<float> Step) SeedStep(int threads, int batch)
    {
        Sequential network = SeedNetwork.Create(seed: 3);
        network.Threads = threads;
        FloatTensor images = TestData.FloatTensor(4, batch, 1, 32, 32);
        int[] labels = [.. Enumerable.Range(0, batch).Select(i => i % 10)];
        var loss = new CrossEntropyLoss();
        var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), 0.01f, 0.9f, 5e-4f);
        return (network, () =>
        {
            network.ZeroGradients();
            float value = loss.Forward(network.Forward(images), labels);
            network.Backward(loss.Backward());
            sgd.Step();
            return value;
        });
    }

    [Theory]
    [InlineData(64, 1)]
    [InlineData(64, 2)]
    [InlineData(3, 2)]
    public void A_training_step_allocates_nothing_on_any_thread_after_warm_up(int batch, int threads)
    {
        (_, Func<float> step) = SeedStep(threads, batch);
        for (int i = 0; i < 2; i++)
        {
            step();
        }
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() => step()));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Training_steps_are_deterministic_for_a_thread_count(int threads)
    {
        (Sequential first, Func<float> stepFirst) = SeedStep(threads, 16);
        (Sequential second, Func<float> stepSecond) = SeedStep(threads, 16);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(stepFirst(), stepSecond());
        }
        foreach (((string name, Parameter a), (_, Parameter b)) in first.NamedParameters().Zip(second.NamedParameters()))
        {
            Assert.True(a.Value.Data.SequenceEqual(b.Value.Data), name);
        }
    }
}
