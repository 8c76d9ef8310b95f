using System.Text.Json;
using Engine.Cli.Demo;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Tests.Cli;

/// <summary>
/// <c>engine demo</c>: one --quick run (the whole pipeline on 1,500 training digits, one epoch, short timings) checked
/// file by file against values computed here from the files it wrote, and its usage errors. Speed is never asserted.
/// </summary>
public sealed class DemoCliTests : IDisposable
{
    private static readonly string[] StageNames = ["float", "pruned", "int8", "pruned int8"];
    private static readonly string[] ContractKeys = ["name", "accuracy", "parameters", "bytes", "latency_ms", "samples_per_second", "multiply_accumulates"];
    private static readonly string Data = Path.Combine(AppContext.BaseDirectory, "data", "mnist");

    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_quick_demo_writes_the_four_models_the_statistics_and_a_record_that_matches_them()
    {
        string output = Path.Combine(_dir, "nested", "artifacts");   // created, parents too
        var run = CliRunner.Run("demo", "--quick", "--out", output, "--threads", "2", "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        string[] files = ["float.safetensors", "pruned.safetensors", "int8.safetensors", "pruned.int8.safetensors", "stats.safetensors", "demo.json"];
        foreach (string file in files)
        {
            Assert.True(File.Exists(Path.Combine(output, file)), $"{file} missing");
            Assert.Contains($"Wrote {Path.Combine(output, file)} (", run.StdOut);
        }
        Assert.Empty(Directory.GetFiles(output, "*.tmp", SearchOption.AllDirectories).Concat(Directory.GetFiles(output, ".*")));

        DemoResults results = DemoJson.Read(Path.Combine(output, "demo.json"));
        Assert.Equal(StageNames, results.Stages.Select(s => s.Name));
        Assert.Equal(2, results.Threads);
        Assert.Single(results.Training);
        Assert.True(results.Seconds > 0);
        Assert.Contains("logical processors", results.Machine);

        // Each stage's figures are those of the file it names, computed here sample by sample.
        foreach (DemoStage stage in results.Stages)
        {
            string path = Path.Combine(output, stage.File);
            Assert.Equal(new FileInfo(path).Length, stage.Bytes);
            Assert.Equal(CliRunner.Accuracy(path, Data), (float)stage.Accuracy);
            Assert.True(stage.LatencyMs > 0 && stage.SamplesPerSecond > 0, $"{stage.Name}: {stage.LatencyMs} ms, {stage.SamplesPerSecond} samples/s");
        }
        DemoStage floatStage = results.Stages[0], pruned = results.Stages[1], int8 = results.Stages[2], prunedInt8 = results.Stages[3];
        FloatModel floatModel = ModelFile.LoadFloat(Path.Combine(output, floatStage.File));
        FloatModel prunedModel = ModelFile.LoadFloat(Path.Combine(output, pruned.File));
        Assert.Equal(floatModel.Network.ParameterCount, floatStage.Parameters);
        Assert.Equal(prunedModel.Network.ParameterCount, pruned.Parameters);
        Assert.Equal(NetworkSize.Describe(floatModel.Network, floatModel.InputShape).Sum(l => l.MultiplyAccumulates), floatStage.MultiplyAccumulates);
        Assert.Equal(NetworkSize.Describe(prunedModel.Network, prunedModel.InputShape).Sum(l => l.MultiplyAccumulates), pruned.MultiplyAccumulates);
        Assert.Equal((floatStage.Parameters, floatStage.MultiplyAccumulates), (int8.Parameters, int8.MultiplyAccumulates));
        Assert.Equal((pruned.Parameters, pruned.MultiplyAccumulates), (prunedInt8.Parameters, prunedInt8.MultiplyAccumulates));
        Assert.True(floatStage.Accuracy > 0.3, $"quick float accuracy {floatStage.Accuracy} (chance is 0.1)");
        Assert.True(pruned.Parameters < floatStage.Parameters);
        Assert.True(pruned.MultiplyAccumulates < floatStage.MultiplyAccumulates);
        Assert.True(int8.Bytes < floatStage.Bytes);
        Assert.True(prunedInt8.Bytes < pruned.Bytes);

        // The statistics are those of the float model's weights (the loader checks the recorded hash).
        Assert.Equal(3, Engine.IO.GradientStatisticsFile.Load(Path.Combine(output, "stats.safetensors"), floatModel.Network, floatModel.InputShape).Summaries().Count);

        // Neurons: every prunable layer; the seed criterion's model lost half of conv2 and fc1, none of conv1.
        Assert.Equal(["conv1", "conv2", "fc1"], results.Neurons.Select(n => n.Layer));
        Assert.Equal([0, 32, 64], results.Neurons.Select(n => n.Pruned.Count(p => p)));
        foreach (DemoLayerNeurons layer in results.Neurons)
        {
            Assert.Equal(layer.Pruned.Length, layer.GradientMean.Length);
            Assert.Equal(layer.Pruned.Length, layer.GradientStd.Length);
            Assert.Equal(layer.Pruned.Length, layer.Score.Length);
            Assert.Equal(1.0, layer.Score.Average(), 9);   // normalised: a layer's mean score is 1
        }
        Assert.Equal([32, 32, 64], results.NeuronsKept.Where(k => k.Criterion == "gradient-stability").Select(k => k.After));
        Assert.Equal(prunedModel.Network.Layers.Select(l => l.Layer).OfType<Conv2d>().Last().OutChannels, results.NeuronsKept.Single(k => k is { Criterion: "gradient-stability", Layer: "conv2" }).After);
        Assert.Equal(["gradient-stability", "taylor"], results.NeuronsKept.Select(k => k.Criterion).Distinct());

        // The quick sweep: four criteria at 0 and 50%; amount 0 is the float model; fine-tuned where the demo fine-tuned.
        Assert.Equal(8, results.PruningSweep.Count);
        Assert.Equal(["gradient-stability", "l1", "taylor", "random"], results.PruningSweep.Select(p => p.Criterion).Distinct());
        // (Training's evaluation: the layers' own forward pass on batches of 250, as computed here.)
        var testSet = Engine.Data.MnistDataset.Load(Data, Engine.Data.MnistSplit.Test);
        var test = Engine.Data.BatchIterator.Sequential(testSet, 250, floatModel.InputMean, floatModel.InputStd);
        float trainedAccuracy = Engine.Training.Evaluation.Accuracy(floatModel.Network, test);
        Assert.Equal(results.Training[0].TestAccuracy, trainedAccuracy);
        Assert.All(results.PruningSweep.Where(p => p.Amount == 0), p => Assert.Equal(trainedAccuracy, p.AccuracyAfterPrune));
        DemoSweepPoint[] fineTuned = results.PruningSweep.Where(p => !double.IsNaN(p.AccuracyAfterFineTune)).ToArray();
        Assert.Equal([("gradient-stability", 0.5), ("taylor", 0.5)], fineTuned.Select(p => (p.Criterion, p.Amount)));
        Assert.Equal(Engine.Training.Evaluation.Accuracy(prunedModel.Network, test), fineTuned[0].AccuracyAfterFineTune);

        // The histogram: fc1's output channel 0 as the float file holds it, on the int8 file's grid for that channel.
        QuantizedNetwork int8Network = QuantizedModelFile.Load(Path.Combine(output, int8.File));
        var fc1 = int8Network.Layers.OfType<QuantizedWeightedLayer>().Single(l => l.Name == "fc1");
        DemoWeightHistogram histogram = results.WeightHistogram;
        Assert.Equal(("fc1", 0), (histogram.Layer, histogram.Channel));
        Assert.Equal(floatModel.Network["fc1"].Parameters[0].Value.Data[..fc1.Depth].ToArray(), histogram.Weights);
        Assert.Equal((fc1.WeightScale(0), fc1.WeightZeroPoint(0), -127, 127), (histogram.Scale, histogram.ZeroPoint, histogram.CodeMin, histogram.CodeMax));

        // The contract JSON: the last line of standard output.
        JsonElement json = run.LastJson();
        JsonElement[] stages = [.. json.GetProperty("stages").EnumerateArray()];
        Assert.Equal(StageNames, stages.Select(s => s.GetProperty("name").GetString()));
        foreach (JsonElement stage in stages)
        {
            Assert.All(ContractKeys, key => Assert.True(stage.TryGetProperty(key, out _), $"stage without '{key}'"));
        }
        Assert.Equal(results.Stages.Select(s => s.Accuracy), stages.Select(s => s.GetProperty("accuracy").GetDouble()));
        Assert.Equal(results.Stages.Select(s => s.Bytes), stages.Select(s => s.GetProperty("bytes").GetInt64()));
        Assert.Equal(results.Stages.Select(s => s.Parameters), stages.Select(s => s.GetProperty("parameters").GetInt64()));
        Assert.Equal(Path.GetFullPath(output), json.GetProperty("out").GetString());
        Assert.True(json.GetProperty("seconds").GetDouble() > 0);

        // The one table: a row per model.
        foreach (string name in StageNames)
        {
            Assert.Matches($@"\|\s+{name} \|", run.StdOut);
        }
    }

    [Fact]
    public void An_out_path_that_is_a_file_exits_with_2_naming_the_option_before_any_work()
    {
        string file = Path.Combine(_dir, "artifacts");
        File.WriteAllText(file, "not a directory");
        var run = CliRunner.Run("demo", "--quick", "--out", file);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--out", run.StdErr);
        Assert.Contains("is a file", run.StdErr);
        Assert.DoesNotContain("[1/5]", run.StdOut);
        Assert.Equal("not a directory", File.ReadAllText(file));
        Assert.Equal([file], Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData("--threads", "0", "--threads must be a whole number from 1")]
    [InlineData("--threads", "two", "--threads: 'two' is not a whole number.")]
    [InlineData("--epochs", "0", "--epochs must be a whole number from 1 to 100")]
    [InlineData("--epochs", "101", "--epochs must be a whole number from 1 to 100")]
    [InlineData("--seed", "-5", "--seed must be a whole number from 0")]
    public void A_bad_option_value_exits_with_2_naming_it(string option, string value, string message)
    {
        string output = Path.Combine(_dir, "out");
        var run = CliRunner.Run("demo", "--quick", "--out", output, option, value);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.StdErr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void A_missing_data_directory_exits_with_1_naming_it_and_writes_nothing()
    {
        string output = Path.Combine(_dir, "out");
        var run = CliRunner.Run("demo", "--quick", "--out", output, "--data", Path.Combine(_dir, "nowhere"));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("nowhere", run.StdErr);
        Assert.False(Directory.Exists(output));
    }
}
