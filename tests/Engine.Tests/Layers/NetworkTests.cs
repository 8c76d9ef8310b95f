using Engine.Tests.Inference;
using Engine.Data;
using Engine.Layers;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Tests.Layers;

public class NetworkTests
{
    [Fact]
    public void Predictions_are_the_arg_max_per_sample_and_agree_with_accuracy()
    {
        Sequential network = SeedNetwork.Create(seed: 7, conv1Channels: 2, conv2Channels: 4, hidden: 8);
        float[] inputs = TestData.Uniform(7 * 1024, 9);
        int[] labels = [0, 1, 2, 3, 4, 5, 6];
        var data = new InMemoryBatches(inputs, [1, 32, 32], labels);
        int[] predictions = Evaluation.Predictions(network, data, batchSize: 3);   // batches of 3, 3 and 1
        var x = new FloatTensor(7, 1, 32, 32);
        inputs.CopyTo(x.Data);
        FloatTensor logits = network.Forward(x);
        for (int n = 0; n < 7; n++)
        {
            Assert.Equal(ClassScores.ArgMax(logits.Data.Slice(n * 10, 10)), predictions[n]);
        }
        Assert.Equal(predictions.Where((p, n) => p == labels[n]).Count() / 7f, Evaluation.Accuracy(network, data, batchSize: 3));
    }


    [Fact]
    public void Whole_network_gradient_matches_finite_differences_along_random_directions_and_per_coordinate()
    {
        // A narrow copy of the seed network on a tiny batch: every layer type, in the seed's order.
        Sequential network = SeedNetwork.Create(seed: 3, conv1Channels: 3, conv2Channels: 4, hidden: 6);
        var x = TestData.FloatTensor(4, 2, 1, 32, 32);
        int[] labels = [3, 7];
        var loss = new CrossEntropyLoss();
        double Loss() => loss.Forward(network.Forward(x), labels);

        network.ZeroGradients();
        loss.Forward(network.Forward(x), labels);
        FloatTensor dx = network.Backward(loss.Backward(), computeInputGradient: true)!;
        float[] inputGradient = dx.Data.ToArray();
        var parameters = network.NamedParameters().ToList();
        GradientCheck.Directional(network, x, labels);
        var gradients = parameters.Select(p => p.Parameter.Gradient.Data.ToArray()).ToList();

        // Per coordinate, for every parameter tensor and the input.
        for (int i = 0; i < parameters.Count; i++)
        {
            Parameter p = parameters[i].Parameter;
            GradientCheck.Compare(parameters[i].Name, p.Value.Length, j => p.Value.Data[j], (j, val) => p.Value.Data[j] = val,
                gradients[i], Loss, maxCoordinates: 40, step: 1e-3f, absoluteTolerance: 5e-4, relativeTolerance: 5e-2);
        }
        GradientCheck.Compare("input", x.Length, j => x.Data[j], (j, val) => x.Data[j] = val,
            inputGradient, Loss, maxCoordinates: 40, step: 1e-3f, absoluteTolerance: 5e-4, relativeTolerance: 5e-2);
    }

    [Fact]
    public void Seed_network_has_the_contract_shapes_and_names()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        var shapes = network.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.Shape.ToArray());
        Assert.Equal(["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], shapes.Keys);
        Assert.Equal([32, 1, 3, 3], shapes["conv1.weight"]);
        Assert.Equal([64, 32, 3, 3], shapes["conv2.weight"]);
        Assert.Equal([128, 4096], shapes["fc1.weight"]);
        Assert.Equal([10, 128], shapes["fc2.weight"]);
        Assert.Equal([5, 10], network.OutputShape([5, 1, 32, 32]));
    }

    [Fact]
    public void Initialisation_follows_pytorch_bounds_and_is_reproducible()
    {
        Sequential a = SeedNetwork.Create(seed: 42), b = SeedNetwork.Create(seed: 42), c = SeedNetwork.Create(seed: 43);
        foreach (((string name, Parameter pa), (_, Parameter pb)) in a.NamedParameters().Zip(b.NamedParameters()))
        {
            Assert.Equal(pa.Value.Data.ToArray(), pb.Value.Data.ToArray());
            int fanIn = name.StartsWith("conv1") ? 9 : name.StartsWith("conv2") ? 288 : name.StartsWith("fc1") ? 4096 : 128;
            float bound = 1f / MathF.Sqrt(fanIn);
            float max = 0;
            foreach (float v in pa.Value.Data)
            {
                max = MathF.Max(max, MathF.Abs(v));
            }
            Assert.True(max <= bound, $"{name}: |w| reaches {max} > 1/sqrt({fanIn})");
            if (pa.Value.Length > 100)
            {
                Assert.True(max > 0.95f * bound, $"{name}: |w| only reaches {max} of bound {bound}: not uniform over the full range");
            }
        }
        Assert.NotEqual(a.NamedParameters().First().Parameter.Value.Data.ToArray(), c.NamedParameters().First().Parameter.Value.Data.ToArray());
    }

    [Fact]
    public void A_wrong_input_shape_names_the_layer_and_the_shapes()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        var e = Assert.Throws<ArgumentException>(() => network.Forward(new FloatTensor(2, 3, 32, 32)));
        Assert.Contains("conv1", e.Message);
        Assert.Contains("[2, 3, 32, 32]", e.Message);
        e = Assert.Throws<ArgumentException>(() => network.Forward(new FloatTensor(2, 1, 28, 28)));
        Assert.Contains("fc1", e.Message);
        Assert.Throws<ArgumentException>(() => new Linear(3, 2).Forward(new FloatTensor(4, 5)));
        Assert.Throws<InvalidOperationException>(() => new Linear(3, 2).Backward(new FloatTensor(4, 2)));
    }

    [Fact]
    public void Tensor_shape_errors_are_clear()
    {
        Assert.Throws<ArgumentException>(() => new FloatTensor(-1, 2));
        var e = Assert.Throws<ArgumentException>(() => new FloatTensor(new float[5], 2, 3));
        Assert.Contains("[2, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => new FloatTensor(2, 3).Reshape(7));
        Assert.Contains("[2, 3]", e.Message);
    }
}

/// <summary>Allocation counts read the process-wide counter, so they run alone (every thread counts, workers included).</summary>
[Collection(ProcessWideMeasurements.Name)]
public class NetworkAllocationTests
{
    [Fact]
    public void Inference_and_training_steps_allocate_nothing_after_warm_up()
    {
        // Bytes allocated on every thread: this one runs partition 0 of every parallel step, the workers the rest.
        Sequential network = SeedNetwork.Create(seed: 2, conv1Channels: 4, conv2Channels: 8, hidden: 16);
        var x = TestData.FloatTensor(6, 8, 1, 32, 32);
        int[] labels = [0, 1, 2, 3, 4, 5, 6, 7];
        var loss = new CrossEntropyLoss();
        var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), 0.01f, 0.9f);
        void Step()
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(x), labels);
            network.Backward(loss.Backward());
            sgd.Step();
        }
        Step();
        Step();
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            network.Forward(x);
            Step();
        }));
    }
}
