using Engine.Layers;
using Engine.Pruning;
using Engine.Statistics;
using Engine.Tensors;
using Engine.Tests.Layers;
using Engine.Training;

namespace Engine.Tests.Pruning;

public class PruningTests
{
    private static readonly int[] Input = [1, 32, 32];

    private static Sequential Small(ulong seed = 3) => SeedNetwork.Create(seed, conv1Channels: 6, conv2Channels: 8, hidden: 12);

    private static PruningPlan SomePlan()
    {
        var plan = new PruningPlan();
        plan.Remove("conv1", [0, 4]);
        plan.Remove("conv2", [1, 2, 7]);
        plan.Remove("fc1", [3, 5, 6, 11]);
        return plan;
    }

    [Fact]
    public void Groups_are_derived_from_the_network_including_the_flatten_rewiring()
    {
        var groups = PruningGroups.Find(SeedNetwork.Create(1), Input);
        Assert.Equal(["conv1", "conv2", "fc1"], groups.Select(g => g.Name));
        Assert.Equal(["conv2", "fc1", "fc2"], groups.Select(g => g.ConsumerName));
        Assert.Equal([1, 64, 1], groups.Select(g => g.InputsPerNeuron));

        // Another shape of the same layer types: three convolutions, a 2x2 pool, two hidden linear layers.
        var other = new Sequential(
            ("a", new Conv2d(1, 4, 3, 1, 1)), ("r1", new ReLU()), ("b", new Conv2d(4, 5, 3, 2, 1)), ("r2", new ReLU()),
            ("c", new Conv2d(5, 6, 1)), ("p", new AvgPool2d(2)), ("f", new Flatten()),
            ("d", new Linear(6 * 8 * 8, 7)), ("r3", new ReLU()), ("e", new Linear(7, 9)), ("r4", new ReLU()), ("g", new Linear(9, 3)));
        var found = PruningGroups.Find(other, Input);
        Assert.Equal(["a", "b", "c", "d", "e"], found.Select(g => g.Name));
        Assert.Equal([1, 1, 64, 1, 1], found.Select(g => g.InputsPerNeuron));
    }

    [Fact]
    public void Structured_network_gives_the_masked_networks_outputs_and_is_smaller()
    {
        Sequential original = Small();
        Sequential structured = StructuredPruner.Apply(original, SomePlan(), Input);
        Sequential masked = StructuredPruner.Apply(original, new PruningPlan(), Input);
        MaskPruner.Apply(masked, SomePlan(), Input);

        Assert.Equal([4, 1, 3, 3], structured.NamedParameters().First(p => p.Name == "conv1.weight").Parameter.Value.Shape.ToArray());
        Assert.Equal([5, 4, 3, 3], structured.NamedParameters().First(p => p.Name == "conv2.weight").Parameter.Value.Shape.ToArray());
        Assert.Equal([8, 5 * 64], structured.NamedParameters().First(p => p.Name == "fc1.weight").Parameter.Value.Shape.ToArray());
        Assert.Equal([10, 8], structured.NamedParameters().First(p => p.Name == "fc2.weight").Parameter.Value.Shape.ToArray());

        FloatTensor x = TestData.FloatTensor(7, 5, 1, 32, 32);
        float[] expected = masked.Forward(x).Data.ToArray();
        float[] actual = structured.Forward(x).Data.ToArray();
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-5f);
        }
    }

    [Fact]
    public void Pruning_nothing_is_the_identity()
    {
        Sequential original = Small();
        PruningPlan plan = NeuronImportance.Rank(original, Input, PruningCriterion.L1, amount: 0);
        Assert.Empty(plan.Removed);
        Sequential copy = StructuredPruner.Apply(original, plan, Input);
        FloatTensor x = TestData.FloatTensor(8, 2, 1, 32, 32);
        Assert.Equal(original.Forward(x).Data.ToArray(), copy.Forward(x).Data.ToArray());
    }

    [Fact]
    public void A_pruned_network_still_passes_the_gradient_check()
    {
        Sequential pruned = StructuredPruner.Apply(Small(), SomePlan(), Input);
        FloatTensor x = TestData.FloatTensor(9, 2, 1, 32, 32);
        int[] labels = [1, 8];
        GradientCheck.Directional(pruned, x, labels, step: 2e-4f);
        // Per coordinate on the weights (a bias moves every pixel of its channel at once, so its steps cross ReLU kinks).
        var loss = new CrossEntropyLoss();
        pruned.ZeroGradients();
        loss.Forward(pruned.Forward(x), labels);
        pruned.Backward(loss.Backward());
        foreach ((string name, Parameter p) in pruned.NamedParameters().Where(p => p.Name.EndsWith(".weight")))
        {
            float[] analytic = p.Gradient.Data.ToArray();
            GradientCheck.Compare(name, p.Value.Length, j => p.Value.Data[j], (j, v) => p.Value.Data[j] = v, analytic,
                () => loss.Forward(pruned.Forward(x), labels), maxCoordinates: 25, step: 1e-3f, absoluteTolerance: 5e-4, relativeTolerance: 5e-2);
        }
    }

    [Fact]
    public void Pruning_every_neuron_of_a_layer_or_the_output_layer_is_refused()
    {
        var all = new PruningPlan();
        all.Remove("conv2", Enumerable.Range(0, 8));
        var e = Assert.Throws<ArgumentException>(() => StructuredPruner.Apply(Small(), all, Input));
        Assert.Contains("all 8 neurons of layer 'conv2'", e.Message);
        Assert.Throws<ArgumentException>(() => NeuronImportance.Rank(Small(), Input, PruningCriterion.L2, 1.0, ["fc1"]))
            .Message.Contains("fc1");
        var output = new PruningPlan();
        output.Remove("fc2", [0]);
        Assert.Contains("last layer", Assert.Throws<ArgumentException>(() => MaskPruner.Apply(Small(), output, Input)).Message);
        var outOfRange = new PruningPlan();
        outOfRange.Remove("fc1", [12]);
        Assert.Contains("neuron 12", Assert.Throws<ArgumentException>(() => StructuredPruner.Apply(Small(), outOfRange, Input)).Message);
    }

    [Fact]
    public void Magnitude_criteria_remove_the_smallest_neurons_and_random_is_seeded()
    {
        Sequential network = Small();
        var fc1 = (Linear)network["fc1"];
        fc1.Weight.Value.Data.Slice(2 * fc1.InFeatures, fc1.InFeatures).Fill(1e-4f);
        fc1.Weight.Value.Data.Slice(9 * fc1.InFeatures, fc1.InFeatures).Fill(-2e-4f);
        foreach (PruningCriterion c in new[] { PruningCriterion.L1, PruningCriterion.L2 })
        {
            Assert.Equal([2, 9], NeuronImportance.Rank(network, Input, c, 2.0 / 12, ["fc1"]).RemovedFrom("fc1"));
        }
        int[] a = NeuronImportance.Rank(network, Input, PruningCriterion.Random, 0.5, ["fc1"], seed: 1).RemovedFrom("fc1");
        int[] b = NeuronImportance.Rank(network, Input, PruningCriterion.Random, 0.5, ["fc1"], seed: 1).RemovedFrom("fc1");
        int[] c2 = NeuronImportance.Rank(network, Input, PruningCriterion.Random, 0.5, ["fc1"], seed: 2).RemovedFrom("fc1");
        Assert.Equal(a, b);
        Assert.NotEqual(a, c2);
    }

    [Fact]
    public void Global_ranking_prunes_the_requested_total_and_never_empties_a_layer()
    {
        Sequential network = Small();
        PruningPlan plan = NeuronImportance.Rank(network, Input, PruningCriterion.L1, 0.9, global: true);
        int total = plan.Removed.Values.Sum(v => v.Length);
        Assert.Equal((int)Math.Round(0.9 * (6 + 8 + 12)), total);
        Assert.All(PruningGroups.Find(network, Input), g => Assert.True(plan.RemovedFrom(g.Name).Length < g.Neurons));
    }

    [Fact]
    public void A_dead_neuron_has_zero_gradients_and_is_pruned_first_by_gradient_stability_and_taylor()
    {
        Sequential network = Small();
        var conv2 = (Conv2d)network["conv2"];
        // A large negative bias keeps neuron 5's ReLU closed: its gradients are exactly zero.
        conv2.Bias.Value.Data[5] = -1e4f;
        var stats = new GradientStatistics(network, Input);
        var loss = new CrossEntropyLoss();
        for (int step = 0; step < 4; step++)
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(TestData.FloatTensor(20 + (ulong)step, 4, 1, 32, 32)), [0, 1, 2, 3]);
            network.Backward(loss.Backward());
            stats.OnGradients(network);
        }
        NeuronGradientSummary s = stats.Summary("conv2");
        Assert.Equal(0, s.MeanAbsMean[5]);
        Assert.Equal(0, s.RmsStd[5]);
        Assert.Equal(0, s.Taylor[5]);
        Assert.All(Enumerable.Range(0, 8).Where(i => i != 5), i => Assert.True(s.RmsStd[i] > 0));
        foreach (PruningCriterion c in new[] { PruningCriterion.GradientStability, PruningCriterion.Taylor })
        {
            Assert.Equal([5], NeuronImportance.Rank(network, Input, c, 1.0 / 8, ["conv2"], statistics: stats).RemovedFrom("conv2"));
        }
        Assert.Contains(5, NeuronImportance.Threshold(network, Input, stats, 0.01, 0.01, ["conv2"]).RemovedFrom("conv2"));
    }

    [Fact]
    public void Masks_keep_pruned_weights_at_zero_through_fine_tuning()
    {
        Sequential network = Small();
        MaskPruner mask = MaskPruner.Apply(network, SomePlan(), Input);
        var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), 0.1f, 0.9f, 1e-3f);
        var loss = new CrossEntropyLoss();
        for (int step = 0; step < 3; step++)
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(TestData.FloatTensor(30 + (ulong)step, 4, 1, 32, 32)), [0, 1, 2, 3]);
            network.Backward(loss.Backward());
            mask.OnGradients(network);
            sgd.Step();
            mask.OnStep(network);
        }
        var fc1 = (Linear)network["fc1"];
        foreach (int n in new[] { 3, 5, 6, 11 })
        {
            Assert.All(fc1.Weight.Value.Data.Slice(n * fc1.InFeatures, fc1.InFeatures).ToArray(), v => Assert.Equal(0f, v));
            Assert.Equal(0f, fc1.Bias.Value.Data[n]);
        }
        Assert.NotEqual(0f, fc1.Bias.Value.Data[0]);
    }
}
