using System.Numerics.Tensors;
using Engine.IO;
using Engine.Layers;
using Engine.Statistics;
using Engine.Training;
using FloatTensor = Engine.Tensors.FloatTensor;

namespace Engine.Tests.Pruning;

public sealed class GradientStatisticsTests : IDisposable
{
    private static readonly int[] Input = [1, 32, 32];
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-gs-" + Guid.NewGuid().ToString("N")[..12]);

    public GradientStatisticsTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (Sequential Network, GradientStatistics Stats, List<float[]> Fc1Gradients, List<double[]> Fc1Taylor) Track(int steps) =>
        Track(steps, StatisticsWindow.All);

    private static (Sequential Network, GradientStatistics Stats, List<float[]> Fc1Gradients, List<double[]> Fc1Taylor) Track(int steps, StatisticsWindow window)
    {
        Sequential network = SeedNetwork.Create(2, conv1Channels: 3, conv2Channels: 4, hidden: 5);
        var stats = new GradientStatistics(network, Input, window);
        var loss = new CrossEntropyLoss();
        var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), 0.05f, 0.9f);
        var gradients = new List<float[]>();
        var taylor = new List<double[]>();
        var fc1 = (Linear)network["fc1"];
        for (int step = 0; step < steps; step++)
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(TestData.FloatTensor(40 + (ulong)step, 3, 1, 32, 32)), [step % 10, 4, 9]);
            network.Backward(loss.Backward());
            stats.OnGradients(network);
            gradients.Add(fc1.Weight.Gradient.Data.ToArray());
            taylor.Add(Enumerable.Range(0, 5).Select(n =>
                (double)TensorPrimitives.Dot(fc1.Weight.Value.Data.Slice(n * fc1.InFeatures, fc1.InFeatures), fc1.Weight.Gradient.Data.Slice(n * fc1.InFeatures, fc1.InFeatures))
                + (double)fc1.Bias.Value.Data[n] * fc1.Bias.Gradient.Data[n]).ToArray());
            sgd.Step();
        }
        return (network, stats, gradients, taylor);
    }

    [Fact]
    public void Statistics_match_a_two_pass_computation_over_the_observed_gradients()
    {
        (_, GradientStatistics stats, List<float[]> grads, List<double[]> taylor) = Track(6);
        RunningStatistics fc1 = stats["fc1.weight"];
        Assert.Equal(6, fc1.Count);
        for (int i = 0; i < grads[0].Length; i += 17)
        {
            double mean = grads.Average(g => (double)g[i]);
            double m2 = grads.Sum(g => (g[i] - mean) * (g[i] - mean));
            Assert.Equal(mean, fc1.Mean[i], 1e-12);
            Assert.Equal(m2, fc1.M2[i], 1e-12);
        }
        double[] expectedTaylor = Enumerable.Range(0, 5).Select(n => taylor.Average(t => Math.Abs(t[n]))).ToArray();
        double[] actual = stats.Summaries().First(s => s.Layer == "fc1").Taylor;
        for (int n = 0; n < 5; n++)
        {
            Assert.Equal(expectedTaylor[n], actual[n], 1e-6);
        }
    }

    [Fact]
    public void Saved_statistics_load_back_and_refuse_another_architecture()
    {
        (Sequential network, GradientStatistics stats, _, _) = Track(3);
        string path = Path.Combine(_dir, "stats.safetensors");
        GradientStatisticsFile.Save(stats, path);
        GradientStatistics back = GradientStatisticsFile.Load(path, network, Input);
        Assert.Equal(stats["conv2.weight"].Mean.ToArray(), back["conv2.weight"].Mean.ToArray());
        Assert.Equal(stats["fc1.bias"].M2.ToArray(), back["fc1.bias"].M2.ToArray());
        Assert.Equal(stats.Summaries()[1].Taylor, back.Summaries()[1].Taylor);

        Sequential other = SeedNetwork.Create(2, conv1Channels: 3, conv2Channels: 6, hidden: 5);
        var e = Assert.Throws<InvalidDataException>(() => GradientStatisticsFile.Load(path, other, Input));
        Assert.Contains("stats.safetensors", e.Message);

        string model = Path.Combine(_dir, "model.safetensors");
        Engine.IO.ModelFile.SaveFloat(network, model, 0f, 1f, Input);
        Assert.Contains("not a gradient statistics file", Assert.Throws<InvalidDataException>(() => GradientStatisticsFile.Load(model, network, Input)).Message);
    }

    [Fact]
    public void Statistics_are_bound_to_the_weights_they_were_recorded_on()
    {
        (Sequential network, GradientStatistics stats, _, _) = Track(3);
        string path = Path.Combine(_dir, "stats.safetensors");
        GradientStatisticsFile.Save(stats, path);
        SafeTensorsFile file = SafeTensorsFile.Read(path);
        Assert.Equal(GradientStatisticsFile.WeightsSha256(network), file.Metadata[GradientStatisticsFile.WeightsKey]);
        Assert.Matches("^[0-9a-f]{64}$", file.Metadata[GradientStatisticsFile.WeightsKey]);

        // The hash is of the float bytes in state_dict order, computed independently here.
        byte[] bytes = network.NamedParameters().SelectMany(p => p.Parameter.Value.Data.ToArray().SelectMany(BitConverter.GetBytes)).ToArray();
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), GradientStatisticsFile.WeightsSha256(network));

        // Same architecture, other seed: refused, naming the file.
        Sequential other = SeedNetwork.Create(7, conv1Channels: 3, conv2Channels: 4, hidden: 5);
        var e = Assert.Throws<InvalidDataException>(() => GradientStatisticsFile.Load(path, other, Input));
        Assert.Contains("stats.safetensors", e.Message);
        Assert.Contains("other weights", e.Message);

        // A file written before the key existed still loads.
        var metadata = file.Metadata.Where(kv => kv.Key != GradientStatisticsFile.WeightsKey).ToDictionary(kv => kv.Key, kv => kv.Value);
        string old = Path.Combine(_dir, "old.safetensors");
        new SafeTensorsFile(file.Tensors, metadata).Write(old);
        Assert.Equal(stats["fc1.bias"].M2.ToArray(), GradientStatisticsFile.Load(old, other, Input)["fc1.bias"].M2.ToArray());
    }

    [Fact]
    public void Windowed_statistics_weigh_the_observed_gradients_exponentially()
    {
        var window = StatisticsWindow.ExponentialHalfLife(3);
        (_, GradientStatistics stats, List<float[]> grads, List<double[]> taylor) = Track(9, window);
        Assert.Equal(window, stats.Window);
        RunningStatistics fc1 = stats["fc1.weight"];
        Assert.Equal(window, fc1.Window);
        double[] weights = Enumerable.Range(0, 9).Select(k => Math.Pow(2, -(8 - k) / 3.0)).ToArray();
        double w = weights.Sum();
        for (int i = 0; i < grads[0].Length; i += 17)
        {
            double mean = Enumerable.Range(0, 9).Sum(k => weights[k] * grads[k][i]) / w;
            double m2 = Enumerable.Range(0, 9).Sum(k => weights[k] * (grads[k][i] - mean) * (grads[k][i] - mean));
            Assert.Equal(mean, fc1.Mean[i], 1e-12);
            Assert.Equal(m2, fc1.M2[i], 1e-12);
        }
        double[] actual = stats.Summaries().First(s => s.Layer == "fc1").Taylor;
        for (int n = 0; n < 5; n++)
        {
            Assert.Equal(Enumerable.Range(0, 9).Sum(k => weights[k] * Math.Abs(taylor[k][n])) / w, actual[n], 1e-6);
        }
    }

    [Fact]
    public void The_window_is_saved_read_back_and_validated_and_old_files_read_as_all()
    {
        var window = StatisticsWindow.ExponentialHalfLife(4);
        (Sequential network, GradientStatistics stats, _, _) = Track(5, window);
        string path = Path.Combine(_dir, "windowed.safetensors");
        GradientStatisticsFile.Save(stats, path);
        SafeTensorsFile file = SafeTensorsFile.Read(path);
        Assert.Equal("half-life:4", file.Metadata[GradientStatisticsFile.WindowKey]);
        GradientStatistics back = GradientStatisticsFile.Load(path, network, Input);
        Assert.Equal(window, back.Window);
        Assert.Equal(window, back["conv2.bias"].Window);
        Assert.Equal(stats["conv2.bias"].Weight, back["conv2.bias"].Weight);
        Assert.Equal(stats.Summaries()[2].RmsStd, back.Summaries()[2].RmsStd);

        // A file without the key (written before it existed) holds statistics over all steps.
        string old = Path.Combine(_dir, "old.safetensors");
        new SafeTensorsFile(file.Tensors, file.Metadata.Where(kv => kv.Key != GradientStatisticsFile.WindowKey).ToDictionary()).Write(old);
        GradientStatistics oldBack = GradientStatisticsFile.Load(old, network, Input);
        Assert.True(oldBack.Window.IsAll);
        Assert.Equal(5.0, oldBack["conv2.bias"].Weight);

        foreach (string bad in new[] { "half-life:0", "Half-life:4", "half-life:4 ", "last:4", "" })
        {
            string badPath = Path.Combine(_dir, "bad.safetensors");
            new SafeTensorsFile(file.Tensors, new Dictionary<string, string>(file.Metadata) { [GradientStatisticsFile.WindowKey] = bad }).Write(badPath);
            var e = Assert.Throws<InvalidDataException>(() => GradientStatisticsFile.Load(badPath, network, Input));
            Assert.Contains("bad.safetensors", e.Message);
            Assert.Contains($"'window' is '{bad}'", e.Message);
        }

        (Sequential allNetwork, GradientStatistics allStats, _, _) = Track(2);
        string allPath = Path.Combine(_dir, "all.safetensors");
        GradientStatisticsFile.Save(allStats, allPath);
        Assert.Equal("all", SafeTensorsFile.Read(allPath).Metadata[GradientStatisticsFile.WindowKey]);
        Assert.True(GradientStatisticsFile.Load(allPath, allNetwork, Input).Window.IsAll);
    }
}
