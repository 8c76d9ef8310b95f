namespace Engine.Tests.Cli;

public sealed class PruneCliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Data, string Model, string Stats) TrainSmall() => CliRunner.TrainSmall(_dir);

    [Fact]
    public void Windowed_statistics_are_written_with_their_half_life_and_prune_reads_them()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 192, test: 64);
        string model = Path.Combine(_dir, "model.safetensors"), stats = Path.Combine(_dir, "windowed.safetensors");
        var run = CliRunner.Run("train", "--data", data, "--epochs", "1", "--out", model, "--track-grad-stats", stats, "--grad-stats-half-life", "2");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        Assert.Contains("gradient statistics over 6 steps, half-life 2 steps", run.StdOut);
        Assert.Equal("half-life:2", Engine.IO.SafeTensorsFile.Read(stats).Metadata[Engine.IO.GradientStatisticsFile.WindowKey]);
        run = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--criterion", "gradient-stability,taylor",
            "--amount", "0.5", "--layers", "conv2", "--structured", "--finetune-epochs", "0");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
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
        // Accuracies that can be wrong: before pruning it is the model file's, counted again here in process.
        Assert.Equal(CliRunner.Accuracy(model, data), json.GetProperty("accuracy_before").GetSingle());
        Assert.Equal(json.GetProperty("parameters_after").GetInt64(), json.GetProperty("parameters_stored").GetInt64());
        Assert.Equal(32, json.GetProperty("neurons_before").GetInt32() - json.GetProperty("neurons_after").GetInt32());
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
    public void Mask_pruning_reports_zeroed_neurons_and_the_parameters_that_still_act()
    {
        (string data, string model, _) = TrainSmall();
        var run = CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "l1", "--amount", "0.5", "--layers", "conv2",
            "--finetune-epochs", "1", "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        var json = run.LastJson();
        // As the structured test: conv2 keeps 32 of 64 filters, fc1 reads 32 x 64 fewer inputs; the masks still store all.
        Assert.Equal(544_522, json.GetProperty("parameters_stored").GetInt64());
        Assert.Equal(544_522 - 32 * 289 - 32 * 64 * 128, json.GetProperty("parameters_after").GetInt64());
        Assert.Equal(234, json.GetProperty("neurons_before").GetInt32());
        Assert.Equal(202, json.GetProperty("neurons_after").GetInt32());
        Assert.Contains("neurons 234 -> 202 (32 zeroed); parameters 544,522 -> 273,130 effective, 544,522 still stored", run.StdOut);
    }

    [Fact]
    public void Threshold_mode_prints_and_writes_the_thresholds_not_an_unused_amount()
    {
        (string data, string model, string stats) = TrainSmall();
        string pruned = Path.Combine(_dir, "pruned.safetensors"), report = Path.Combine(_dir, "report.md");
        var run = CliRunner.Run("prune", "--model", model, "--stats", stats, "--data", data, "--mean-threshold", "0.5", "--std-threshold", "0.5",
            "--finetune-epochs", "0", "--out", pruned, "--report", report, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        Assert.DoesNotContain("50 %", run.StdOut);
        Assert.Contains("thresholds (mean 0.5, std 0.5)", run.StdOut);
        Assert.Contains("thresholds (mean 0.5, std 0.5)", File.ReadAllText(report));
        var first = run.LastJson().GetProperty("runs")[0];
        Assert.Equal(System.Text.Json.JsonValueKind.Null, first.GetProperty("amount").ValueKind);
        Assert.Equal(0.5, first.GetProperty("mean_threshold").GetDouble());
        var metadata = Engine.IO.SafeTensorsFile.Read(pruned).Metadata;
        Assert.False(metadata.ContainsKey("pruned_amount"));
        Assert.Equal("0.5", metadata["pruned_mean_threshold"]);
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

    [Fact]
    public void The_report_is_written_by_rename_and_never_in_place()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "makes a hard link with ln(1).");
        (string data, string model, _) = TrainSmall();
        string report = Path.Combine(_dir, "report.md"), link = Path.Combine(_dir, "link.md");
        File.WriteAllText(report, "previous report");
        using (var ln = System.Diagnostics.Process.Start("ln", [report, link]))
        {
            ln.WaitForExit();
            Assert.Equal(0, ln.ExitCode);
        }
        var run = CliRunner.Run("prune", "--model", model, "--data", data, "--criterion", "l1", "--finetune-epochs", "0", "--report", report);
        Assert.True(run.ExitCode == 0, run.StdErr);
        // A new file renamed over the old name: the other link keeps the old contents (an in-place write would change both).
        Assert.StartsWith("| amount | criterion |", File.ReadAllText(report));
        Assert.Equal("previous report", File.ReadAllText(link));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }
}
