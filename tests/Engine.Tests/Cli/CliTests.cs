namespace Engine.Tests.Cli;

public sealed class CliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Train_then_eval_round_trips_a_model_file_with_json_output()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 1024, test: 100);
        string model = Path.Combine(_dir, "model.safetensors");
        var train = CliRunner.Run("train", "--data", data, "--epochs", "1", "--batch-size", "32", "--threads", "2", "--out", model, "--json");
        Assert.True(train.ExitCode == 0, train.StdErr + train.StdOut);
        var result = train.LastJson();
        Assert.Equal(1, result.GetProperty("epochs").GetInt32());
        float trainedAccuracy = result.GetProperty("test_accuracy").GetSingle();
        // The reported accuracy is the written model's, counted again here in process; and training did learn something
        // (chance is 10%; this run reaches 66%).
        Assert.Equal(CliRunner.Accuracy(model, data), trainedAccuracy);
        Assert.True(trainedAccuracy >= 0.5f, $"test accuracy {trainedAccuracy} after one epoch on 1,024 digits");
        Assert.Contains("after 1 epoch in", train.StdOut);
        Assert.True(result.GetProperty("seconds").GetDouble() > 0);
        Assert.True(File.Exists(model));

        var eval = CliRunner.Run("eval", "--model", model, "--data", data, "--json");
        Assert.True(eval.ExitCode == 0, eval.StdErr + eval.StdOut);
        var evaluated = eval.LastJson();
        Assert.Equal(100, evaluated.GetProperty("samples").GetInt32());
        Assert.Equal("engine.float", evaluated.GetProperty("format").GetString());
        Assert.Equal(trainedAccuracy, evaluated.GetProperty("accuracy").GetSingle());
    }

    [Theory]
    [InlineData("--epochs", "train", "--epochs", "0")]
    [InlineData("--lr", "train", "--lr", "-1")]
    [InlineData("'many' is not a whole number", "train", "--batch-size", "many")]
    [InlineData("--no-such-option", "train", "--no-such-option")]
    [InlineData("no-such-command", "no-such-command")]
    [InlineData("--model", "eval")]
    [InlineData("Unrecognized command or argument 'prun'", "prun", "--help")]
    [InlineData("Unrecognized command or argument 'trian'", "trian", "-h")]
    [InlineData("--seed must be a whole number from 0 to 18446744073709551615, got '-5'", "train", "--seed", "-5")]
    [InlineData("--seed must be a whole number", "train", "--seed", "1.5")]
    [InlineData("--threads must be a whole number from 1 to", "train", "--threads", "1000")]
    [InlineData("--threads", "train", "--threads", "0")]
    [InlineData("--grad-stats-half-life must be a whole number from 1 to 1000000000, got 0", "train", "--track-grad-stats", "s.safetensors", "--grad-stats-half-life", "0")]
    [InlineData("--grad-stats-half-life must be a whole number from 1 to 1000000000, got -3", "train", "--track-grad-stats", "s.safetensors", "--grad-stats-half-life", "-3")]
    [InlineData("'1.5' is not a whole number", "train", "--track-grad-stats", "s.safetensors", "--grad-stats-half-life", "1.5")]
    [InlineData("--grad-stats-half-life needs --track-grad-stats FILE", "train", "--grad-stats-half-life", "100")]
    [InlineData("--batch-size must be a whole number from 1 to 65536, got 100000", "train", "--batch-size", "100000")]
    [InlineData("--threads", "eval", "--model", "m.safetensors", "--threads", "1000")]
    [InlineData("--seed", "prune", "--model", "m.safetensors", "--seed", "-5")]
    [InlineData("'0.5x' is not a number", "prune", "--model", "m.safetensors", "--finetune-lr", "0.5x")]
    public void Bad_usage_exits_with_2_and_names_the_problem(string expected, params string[] args)
    {
        var run = CliRunner.Run(args);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("error", run.StdErr);
        Assert.Contains(expected, run.StdErr);
        Assert.DoesNotContain("   at ", run.StdErr);
        Assert.DoesNotContain("System.", run.StdErr);       // no type names such as System.UInt64
        Assert.Empty(run.StdOut);                            // refused before any work (and no help printed as if all were well)
    }

    [Fact]
    public void A_batch_larger_than_the_training_set_is_bad_usage_found_before_training()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 64, test: 32);
        var run = CliRunner.Run("train", "--data", data, "--batch-size", "65", "--epochs", "1");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--batch-size 65 is more than the 64 training samples", run.StdErr);
        Assert.DoesNotContain("Training", run.StdOut);
    }

    [Fact]
    public void Help_names_the_command_engine_and_tells_the_warm_up_as_it_is()
    {
        var run = CliRunner.Run("train", "--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("engine train [options]", run.StdOut);
        Assert.DoesNotContain("Engine.Cli", run.StdOut);
        Assert.Contains("over the first 0.5 epoch", run.StdOut);
        Assert.DoesNotContain("first epoch", run.StdOut);
    }

    [Fact]
    public void Eval_refuses_a_model_whose_input_the_digits_do_not_make()
    {
        // A linear-only model declaring 64 x 64 inputs: fed 32 x 32 digits it used to read four digits per sample and
        // report an accuracy with exit 0.
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 64, test: 32);
        var network = new Engine.Layers.Sequential(("flatten", new Engine.Layers.Flatten()), ("fc", new Engine.Layers.Linear(64 * 64, 10)));
        network.Initialize(new SeededRandom(5));
        string floatModel = Path.Combine(_dir, "wide.safetensors"), int8Model = Path.Combine(_dir, "wide.int8.safetensors");
        Engine.IO.ModelFile.SaveFloat(network, floatModel, 0f, 1f, [1, 64, 64]);
        var calibration = new Engine.Data.InMemoryBatches(TestData.Uniform(8 * 64 * 64, 6, 0f, 1f), [1, 64, 64]);
        Engine.IO.QuantizedModelFile.Save(Engine.Quantization.Quantizer.Quantize(network, calibration, 8, 0f, 1f), int8Model);

        foreach (string model in new[] { floatModel, int8Model })
        {
            var run = CliRunner.Run("eval", "--model", model, "--data", data);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains($"{Path.GetFileName(model)} takes inputs [1, 64, 64], but the digits", run.StdErr);
            Assert.Contains("make [1, 32, 32]", run.StdErr);
        }
    }

    [Fact]
    public void Files_of_the_wrong_kind_are_named_for_what_they_are()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 64, test: 32);
        string model = Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.safetensors");
        string text = Path.Combine(_dir, "notes.safetensors");
        File.WriteAllText(text, "some text, not a model at all");
        string stats = Path.Combine(_dir, "stats.safetensors");
        var network = Engine.Layers.SeedNetwork.Create(1);
        Engine.IO.GradientStatisticsFile.Save(new Engine.Statistics.GradientStatistics(network, [1, 32, 32]), stats);

        foreach (string command in new[] { "eval", "prune", "quantize" })
        {
            string[] extra = command == "prune" ? ["--criterion", "l1"] : [];
            var run = CliRunner.Run([command, "--model", _dir, "--data", data, .. extra]);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("is a directory, not a", run.StdErr);
            Assert.DoesNotContain("denied", run.StdErr);

            run = CliRunner.Run([command, "--model", text, "--data", data, .. extra]);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("notes.safetensors: not a model file", run.StdErr);
            Assert.DoesNotContain("is outside", run.StdErr);

            run = CliRunner.Run([command, "--model", model, "--data", text, .. extra]);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("is a file, not a directory", run.StdErr);
            Assert.DoesNotContain("does not exist", run.StdErr);
        }

        var eval = CliRunner.Run("eval", "--model", stats, "--data", data);
        Assert.Equal(1, eval.ExitCode);
        Assert.Contains("stats.safetensors: gradient statistics", eval.StdErr);
        Assert.DoesNotContain("float model", eval.StdErr);

        foreach (string bad in new[] { _dir, text })
        {
            var prune = CliRunner.Run("prune", "--model", model, "--stats", bad, "--data", data, "--criterion", "taylor");
            Assert.Equal(1, prune.ExitCode);
            Assert.Contains(bad == _dir ? "is a directory, not a file" : "notes.safetensors is not a safetensors file", prune.StdErr);
        }
    }

    [Theory]
    [InlineData("train", "model.safetensors", "epoch 1/20 batch")]
    [InlineData("demo", "artifacts", "[1/5]")]   // the demo's first step is training; its directory is made at the end
    public async Task Ctrl_c_during_training_says_nothing_was_written_and_exits_130(string command, string output, string trainingLine)
    {
        // Enough epochs that training cannot finish before the signal lands, even when a busy test host reads the
        // progress line late: a training step takes about 40 ms, so three epochs once ran out in the time it took.
        await CliRunner.AssertInterruptedCleanly(line => line.StartsWith(trainingLine, StringComparison.Ordinal),
            command, "--epochs", "20", "--threads", "1", "--out", Path.Combine(_dir, output));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));   // no model file, no output directory
    }

    [Fact]
    public void A_missing_data_directory_exits_with_1_naming_it()
    {
        string missing = Path.Combine(_dir, "nowhere");
        var run = CliRunner.Run("train", "--data", missing, "--epochs", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("nowhere", run.StdErr);
        Assert.DoesNotContain("   at ", run.StdErr);
    }

    [Fact]
    public void A_truncated_idx_file_exits_with_1_and_leaves_the_previous_model_untouched()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 64, test: 32);
        string images = Path.Combine(data, "train-images-idx3-ubyte.gz");
        var raw = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(images), System.IO.Compression.CompressionMode.Decompress))
        {
            gz.CopyTo(raw);
        }
        File.Delete(images);
        File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"), raw.ToArray()[..5000]);
        string model = Path.Combine(_dir, "model.safetensors");
        File.WriteAllText(model, "previous contents");

        var run = CliRunner.Run("train", "--data", data, "--epochs", "1", "--out", model);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("train-images-idx3-ubyte", run.StdErr);
        Assert.Contains("truncated", run.StdErr);
        Assert.Equal("previous contents", File.ReadAllText(model));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Eval_of_a_missing_or_corrupt_model_exits_with_1_naming_the_file()
    {
        var run = CliRunner.Run("eval", "--model", Path.Combine(_dir, "absent.safetensors"));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("absent.safetensors", run.StdErr);

        string corrupt = Path.Combine(_dir, "corrupt.safetensors");
        File.WriteAllBytes(corrupt, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x7B]);
        run = CliRunner.Run("eval", "--model", corrupt);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("corrupt.safetensors", run.StdErr);
        Assert.DoesNotContain("   at ", run.StdErr);
    }

    [Fact]
    public void Output_into_a_missing_directory_is_refused_before_training()
    {
        var run = CliRunner.Run("train", "--epochs", "1", "--out", Path.Combine(_dir, "no", "such", "dir", "m.safetensors"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--out", run.StdErr);
    }
}
