namespace Engine.Tests.Cli;

public sealed class PruneCliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Data, string Model, string Stats) TrainSmall()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 192, test: 64);
        string model = Path.Combine(_dir, "model.safetensors"), stats = Path.Combine(_dir, "stats.safetensors");
        var run = CliRunner.Run("train", "--data", data, "--epochs", "1", "--out", model, "--track-grad-stats", stats);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        Assert.Contains("gradient statistics over 6 steps", run.StdOut);
        return (data, model, stats);
    }

    [Fact]
    public void Structured_pruning_writes_a_smaller_model_that_evaluates()
    {
        (string data, string model, string stats) = TrainSmall();
        string pruned = Path.Combine(_dir, "pruned.safetensors");
        var run = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--criterion", "gradient-stability",
            "--amount", "0.5", "--layers", "conv2", "--structured", "--finetune-epochs", "1", "--out", pruned, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        var json = run.LastJson();
        long before = json.GetProperty("parameters_before").GetInt64(), after = json.GetProperty("parameters_after").GetInt64();
        // conv2 loses 32 of 64 filters (32 x 289 parameters) and fc1 loses their 32 x 64 columns (32 x 64 x 128 weights).
        Assert.Equal(544_522, before);
        Assert.Equal(before - 32 * 289 - 32 * 64 * 128, after);
        foreach (string key in new[] { "accuracy_before", "accuracy_after_prune", "accuracy_after_finetune" })
        {
            Assert.InRange(json.GetProperty(key).GetSingle(), 0f, 1f);
        }
        Assert.Contains("conv2", run.StdOut);

        var eval = CliRunner.Run("eval", "--model", pruned, "--data", data, "--json");
        Assert.True(eval.ExitCode == 0, eval.StdErr);
        Assert.Equal(json.GetProperty("accuracy_after_finetune").GetSingle(), eval.LastJson().GetProperty("accuracy").GetSingle());
    }

    [Fact]
    public void Bad_prune_requests_are_refused_with_the_right_exit_code()
    {
        (string data, string model, string stats) = TrainSmall();
        var run = CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "nonsense");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("nonsense", run.StdErr);

        run = CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "taylor");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--stats", run.StdErr);

        run = CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "l1", "--amount", "1.5");
        Assert.Equal(2, run.ExitCode);

        // Usage errors found before any work starts: nothing is pruned, nothing printed on standard output.
        foreach (string[] bad in new[]
                 {
                     new[] { "--amount", "1", "--layers", "fc1", "--finetune-epochs", "0" },
                     ["--amount", "0.25,1"],
                     ["--layers", "conv3"],
                     ["--layers", "conv1,fc2"],
                     ["--layers", "pool"],
                     ["--mean-threshold", "0.5", "--std-threshold", "0.5"],
                 })
        {
            run = CliRunner.Run(["prune", "--model", model, "--data", data, "--criterion", "l1", .. bad]);
            Assert.True(run.ExitCode == 2, string.Join(' ', bad) + ": " + run.StdErr);
            Assert.Contains(bad[0], run.StdErr);
            Assert.DoesNotContain("Pruning", run.StdOut);
        }
        Assert.Contains("'fc2' is not a prunable layer of model.safetensors (prunable: conv1, conv2, fc1;",
            CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "l1", "--layers", "fc2").StdErr);
        run = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--mean-threshold", "0.5", "--std-threshold", "0.5", "--amount", "0.3");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--amount does not apply", run.StdErr);

        // Statistics of another architecture: prune a model, then use the original statistics with it.
        string pruned = Path.Combine(_dir, "pruned.safetensors");
        Assert.Equal(0, CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "l1", "--amount", "0.25", "--structured",
            "--finetune-epochs", "0", "--out", pruned).ExitCode);
        run = CliRunner.Run("prune", "--model", pruned, "--stats", stats, "--data", data, "--criterion", "taylor");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("stats.safetensors", run.StdErr);
        Assert.DoesNotContain("   at ", run.StdErr);
    }

    [Fact]
    public void Statistics_of_another_model_are_refused_and_old_statistics_warn()
    {
        (string data, string model, string stats) = TrainSmall();
        string other = Path.Combine(_dir, "other.safetensors"), otherStats = Path.Combine(_dir, "other-stats.safetensors");
        var train = CliRunner.Run("train", "--data", data, "--epochs", "1", "--seed", "2", "--out", other, "--track-grad-stats", otherStats);
        Assert.True(train.ExitCode == 0, train.StdErr);

        // Same architecture, another seed: refused, naming both files.
        var run = CliRunner.Run("prune", "--model", model, "--stats", otherStats, "--data", data, "--criterion", "taylor", "--finetune-epochs", "0");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("other-stats.safetensors was recorded on other weights than those of model.safetensors", run.StdErr);
        Assert.DoesNotContain("Pruning", run.StdOut);

        // The matching pair works, with no warning.
        run = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--criterion", "taylor", "--finetune-epochs", "0");
        Assert.True(run.ExitCode == 0, run.StdErr);
        Assert.DoesNotContain("warning", run.StdErr);

        // A file written before the hash existed: loads, with a warning line.
        var file = Engine.IO.SafeTensorsFile.Read(stats);
        var metadata = file.Metadata.Where(kv => kv.Key != "weights_sha256").ToDictionary(kv => kv.Key, kv => kv.Value);
        string old = Path.Combine(_dir, "old-stats.safetensors");
        new Engine.IO.SafeTensorsFile(file.Tensors, metadata).Write(old);
        run = CliRunner.Run("prune", "--model", other, "--stats", old, "--data", data, "--criterion", "taylor", "--finetune-epochs", "0");
        Assert.True(run.ExitCode == 0, run.StdErr);
        Assert.Contains("engine: warning: old-stats.safetensors does not record which weights", run.StdErr);
    }
}
