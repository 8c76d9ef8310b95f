using System.Text.Json;

namespace Engine.Tests.Cli;

/// <summary><c>engine analyze</c> and <c>engine compress</c> on a small model trained on a few digits.</summary>
public sealed class CompressCliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Data, string Model, string Stats) TrainSmall() => CliRunner.TrainSmall(_dir);

    [Fact]
    public void Analyze_measures_each_layer_as_prune_measures_it_and_draws_the_picture()
    {
        (string data, string model, string stats) = TrainSmall();
        string plot = Path.Combine(_dir, "sensitivity.png");
        var run = CliRunner.Run("analyze", "--model", model, "--stats", stats, "--data", data, "--amounts", "0.25,0.5", "--bits", "8,4",
            "--plot", plot, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        JsonElement json = run.LastJson();
        Assert.Equal(CliRunner.Accuracy(model, data), json.GetProperty("baseline_accuracy").GetSingle());
        JsonElement[] layers = json.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal(["conv1", "conv2", "fc1", "fc2"], layers.Select(l => l.GetProperty("layer").GetString()));
        Assert.Equal([32, 64, 128, 10], layers.Select(l => l.GetProperty("neurons").GetInt32()));
        Assert.Empty(layers[3].GetProperty("pruned").EnumerateArray());   // the last layer's outputs are never pruned
        Assert.Equal([48, 32], layers[1].GetProperty("pruned").EnumerateArray().Select(p => p.GetProperty("neurons_kept").GetInt32()));
        Assert.All(layers, l => Assert.Equal([8, 4], l.GetProperty("quantized").EnumerateArray().Select(q => q.GetProperty("bits").GetInt32())));

        // The same measurement as 'engine prune' makes straight after pruning one layer.
        var prune = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--criterion", "gradient-stability",
            "--amount", "0.5", "--layers", "conv2", "--structured", "--finetune-epochs", "0", "--json");
        Assert.True(prune.ExitCode == 0, prune.StdErr);
        Assert.Equal(prune.LastJson().GetProperty("accuracy_after_prune").GetSingle(),
            layers[1].GetProperty("pruned")[1].GetProperty("accuracy").GetSingle());

        byte[] png = File.ReadAllBytes(plot);
        Assert.True(png.Length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "a PNG picture");
    }

    [Fact]
    public void Compress_writes_the_chosen_model_with_figures_that_the_file_confirms()
    {
        (string data, string model, string stats) = TrainSmall();
        string output = Path.Combine(_dir, "compressed.safetensors"), plot = Path.Combine(_dir, "pareto.png");
        var run = CliRunner.Run(TimeSpan.FromMinutes(5), "compress", "--model", model, "--stats", stats, "--data", data, "--max-accuracy-drop", "5",
            "--objective", "size", "--max-candidates", "6", "--out", output, "--plot", plot, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        JsonElement json = run.LastJson();
        float floatAccuracy = json.GetProperty("float_accuracy").GetSingle(), accuracy = json.GetProperty("accuracy").GetSingle();
        Assert.Equal(CliRunner.Accuracy(model, data), floatAccuracy);
        Assert.Equal(accuracy, CliRunner.Accuracy(output, data));
        Assert.Equal(Math.Round(100.0 * (floatAccuracy - accuracy), 4), json.GetProperty("accuracy_drop").GetDouble(), 6);
        Assert.True(json.GetProperty("accuracy_drop").GetDouble() <= 5);
        Assert.Equal(new FileInfo(output).Length, json.GetProperty("bytes").GetInt64());
        Assert.Equal(new FileInfo(model).Length, json.GetProperty("float_bytes").GetInt64());
        Assert.Equal((double)new FileInfo(model).Length / new FileInfo(output).Length, json.GetProperty("size_ratio").GetDouble(), 9);
        Assert.True(json.GetProperty("speedup").GetDouble() > 0 && json.GetProperty("seconds").GetDouble() > 0);

        JsonElement[] candidates = json.GetProperty("candidates").EnumerateArray().ToArray();
        Assert.InRange(candidates.Length, 2, 6);
        // The chosen model is the smallest candidate within the budget, and it is on the Pareto front.
        long smallest = candidates.Where(c => c.GetProperty("within_budget").GetBoolean()).Min(c => c.GetProperty("bytes").GetInt64());
        Assert.Equal(smallest, json.GetProperty("bytes").GetInt64());
        int[] front = json.GetProperty("pareto_front").EnumerateArray().Select(i => i.GetInt32()).ToArray();
        Assert.Contains(front, i => candidates[i].GetProperty("bytes").GetInt64() == smallest);
        // Every candidate's file shrinks as the search goes on or it was rejected: the front has no dominated point.
        foreach (int i in front)
        {
            Assert.DoesNotContain(candidates, c => c.GetProperty("bytes").GetInt64() < candidates[i].GetProperty("bytes").GetInt64()
                                                   && c.GetProperty("accuracy").GetSingle() >= candidates[i].GetProperty("accuracy").GetSingle());
        }
        // The layers the JSON names are the layers the file holds.
        int[] neurons = json.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("neurons").GetInt32()).ToArray();
        Assert.Equal(10, neurons[3]);
        long parameters = neurons[0] * (9 + 1) + neurons[1] * (neurons[0] * 9 + 1) + neurons[2] * (neurons[1] * 64 + 1) + 10 * (neurons[2] + 1);
        var eval = CliRunner.Run("eval", "--model", output, "--data", data, "--json");
        Assert.True(eval.ExitCode == 0, eval.StdErr);
        Assert.Equal(parameters, eval.LastJson().GetProperty("parameters").GetInt64());
        Assert.True(File.ReadAllBytes(plot).Length > 1000);
    }

    [Fact]
    public async Task Ctrl_c_during_the_search_writes_nothing_and_exits_130()
    {
        (string data, string model, string stats) = TrainSmall();
        string output = Path.Combine(_dir, "compressed.safetensors"), plot = Path.Combine(_dir, "pareto.png");
        await CliRunner.AssertInterruptedCleanly(line => line.StartsWith("Searching", StringComparison.Ordinal),
            "compress", "--model", model, "--stats", stats, "--data", data, "--finetune-epochs", "20", "--threads", "1", "--out", output, "--plot", plot);
        Assert.False(File.Exists(output));
        Assert.False(File.Exists(plot));
    }

    [Fact]
    public void Bad_requests_are_refused_before_any_work()
    {
        (string data, string model, string stats) = TrainSmall();
        foreach (string[] bad in new[]
                 {
                     new[] { "--objective", "speed" },
                     ["--max-accuracy-drop", "-1"],
                     ["--bits", "8"],
                     ["--bits", "3"],
                     ["--bits", "4,6"],
                     ["--amounts", "0.5,0.25"],
                     ["--amounts", "1"],
                     ["--criterion", "nonsense"],
                     ["--finetune-epochs", "0"],
                 })
        {
            var run = CliRunner.Run(["compress", "--model", model, "--stats", stats, "--data", data, .. bad]);
            Assert.True(run.ExitCode == 2, string.Join(' ', bad) + ": " + run.StdErr);
            Assert.Contains(bad[0], run.StdErr);
            Assert.DoesNotContain("Searching", run.StdOut);
        }
        var noStats = CliRunner.Run("compress", "--model", model, "--data", data);
        Assert.Equal(2, noStats.ExitCode);
        Assert.Contains("--stats", noStats.StdErr);
        var analyze = CliRunner.Run("analyze", "--model", model, "--data", data, "--amounts", "0");
        Assert.Equal(2, analyze.ExitCode);
        Assert.Contains("--amounts", analyze.StdErr);
        var missing = CliRunner.Run("analyze", "--model", Path.Combine(_dir, "missing.safetensors"), "--criterion", "l1", "--data", data);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("missing.safetensors", missing.StdErr);
    }
}
