using Engine.IO;
using Engine.Quantization;

namespace Engine.Tests.Cli;

public sealed class QuantizeCliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Data, string Model) TrainSmall()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 192, test: 64);
        string model = Path.Combine(_dir, "model.safetensors");
        var run = CliRunner.Run("train", "--data", data, "--epochs", "1", "--out", model);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        return (data, model);
    }

    [Fact]
    public void Quantize_writes_an_int8_model_that_eval_reads_with_the_same_accuracy()
    {
        (string data, string model) = TrainSmall();
        string int8 = Path.Combine(_dir, "int8.safetensors");
        var run = CliRunner.Run("quantize", "--model", model, "--data", data, "--calibration-samples", "96", "--observer", "percentile",
            "--explain", "fc1", "--out", int8, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        var json = run.LastJson();
        // Values counted again here, in process, from the two files: accuracies and agreement that can be wrong.
        var floatPredictions = CliRunner.Predictions(model, data);
        var int8Predictions = CliRunner.Predictions(int8, data);
        Assert.Equal(CliRunner.Accuracy(model, data), json.GetProperty("float_accuracy").GetSingle());
        Assert.Equal(CliRunner.Accuracy(int8, data), json.GetProperty("int8_accuracy").GetSingle());
        Assert.Equal((float)floatPredictions.Zip(int8Predictions).Count(p => p.First.Predicted == p.Second.Predicted) / floatPredictions.Length,
            json.GetProperty("agreement").GetSingle());
        // No timing column: one cold pass is no benchmark.
        Assert.DoesNotContain("seconds", run.StdOut.Split('\n').Single(l => l.Contains("model") && l.Contains("accuracy")));
        long floatBytes = json.GetProperty("float_bytes").GetInt64(), int8Bytes = json.GetProperty("int8_bytes").GetInt64();
        Assert.Equal(new FileInfo(model).Length, floatBytes);
        Assert.Equal(new FileInfo(int8).Length, int8Bytes);
        Assert.True(int8Bytes <= 0.27 * floatBytes, $"int8 file {int8Bytes} bytes against float {floatBytes}");
        Assert.Equal(4, json.GetProperty("layers").GetArrayLength());
        Assert.Contains("int8 code", run.StdOut);             // the --explain table
        Assert.Contains("fixed point", run.StdOut);

        var eval = CliRunner.Run("eval", "--model", int8, "--data", data, "--json");
        Assert.True(eval.ExitCode == 0, eval.StdErr);
        Assert.Equal("engine.int8", eval.LastJson().GetProperty("format").GetString());
        Assert.Equal(json.GetProperty("int8_accuracy").GetSingle(), eval.LastJson().GetProperty("accuracy").GetSingle());

        // An int8 file is not a float model: quantizing it again is refused with the file named.
        var again = CliRunner.Run("quantize", "--model", int8, "--data", data);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("int8.safetensors", again.StdErr);
    }

    [Fact]
    public void Quantization_aware_training_at_four_bits_writes_a_model_whose_codes_have_four_bits()
    {
        (string data, string model) = TrainSmall();
        byte[] floatFile = File.ReadAllBytes(model);
        string int4 = Path.Combine(_dir, "qat4.safetensors");
        var run = CliRunner.Run("quantize", "--model", model, "--data", data, "--weight-bits", "4", "--qat-epochs", "1",
            "--qat-freeze-steps", "3", "--qat-lr", "0.005", "--calibration-samples", "96", "--out", int4, "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        var json = run.LastJson();
        Assert.Equal(4, json.GetProperty("weight_bits").GetInt32());
        Assert.Equal(1, json.GetProperty("qat_epochs").GetInt32());
        Assert.Equal(3, json.GetProperty("qat_freeze_steps").GetInt32());
        Assert.Equal(0.005f, json.GetProperty("qat_lr").GetSingle());
        Assert.Equal("moving-average", json.GetProperty("observer").GetString());
        Assert.Contains("observers frozen after 3 of 6 steps", run.StdOut);      // 192 images in batches of 32
        // The float model file is untouched and float_accuracy is its own; int8_accuracy is the written file's.
        Assert.Equal(floatFile, File.ReadAllBytes(model));
        Assert.Equal(CliRunner.Accuracy(model, data), json.GetProperty("float_accuracy").GetSingle());
        Assert.Equal(CliRunner.Accuracy(int4, data), json.GetProperty("int8_accuracy").GetSingle());
        float agreement = json.GetProperty("qat_int8_agreement").GetSingle();
        Assert.InRange(agreement, 0.9f, 1f);
        // Two classifiers that agree on a fraction a of the digits differ in accuracy by at most 1 - a (one digit each way
        // at most per disagreement): the QAT forward's accuracy is tied to the int8 file's, measured above.
        float gap = MathF.Abs(json.GetProperty("qat_accuracy").GetSingle() - json.GetProperty("int8_accuracy").GetSingle());
        Assert.True(gap <= 1f - agreement + 1e-6f, $"accuracies {gap} apart with agreement {agreement}");
        QuantizedNetwork loaded = QuantizedModelFile.Load(int4);
        foreach (QuantizedWeightedLayer layer in loaded.Layers.OfType<QuantizedWeightedLayer>())
        {
            foreach (sbyte code in layer.Weights)
            {
                Assert.InRange(code, -7, 7);
            }
        }

        // Post-training at 4 bits per tensor: asymmetric codes in [-8, 7], no training.
        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--per-tensor", "--weight-bits", "4", "--calibration-samples", "96", "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        json = run.LastJson();
        Assert.Equal(4, json.GetProperty("weight_bits").GetInt32());
        Assert.Equal(0, json.GetProperty("qat_epochs").GetInt32());
        Assert.False(json.GetProperty("per_channel").GetBoolean());
        Assert.Equal("minmax", json.GetProperty("observer").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, json.GetProperty("qat_accuracy").ValueKind);
    }

    [Fact]
    public async Task Ctrl_C_during_quantization_aware_training_stops_it_and_writes_nothing()
    {
        // The bundled digits and enough epochs that training cannot finish before the signal lands.
        string model = Path.Combine(_dir, "model.safetensors");
        var train = CliRunner.Run("train", "--data", CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 96, test: 32), "--epochs", "1", "--out", model);
        Assert.True(train.ExitCode == 0, train.StdErr + train.StdOut);
        string output = Path.Combine(_dir, "out");
        Directory.CreateDirectory(output);
        await CliRunner.AssertInterruptedCleanly(line => line.StartsWith("Quantization-aware training for", StringComparison.Ordinal),
            "quantize", "--model", model, "--qat-epochs", "20", "--threads", "1", "--out", Path.Combine(output, "int8.safetensors"));
        Assert.Empty(Directory.GetFileSystemEntries(output));
    }

    [Theory]
    [InlineData("--weight-bits", "3")]
    [InlineData("--weight-bits", "9")]
    [InlineData("--qat-epochs", "-1")]
    [InlineData("--qat-freeze-steps", "0")]
    [InlineData("--qat-lr", "0")]
    public void Bad_weight_bits_and_qat_settings_are_refused_naming_the_option(string option, string value)
    {
        // Refused while parsing, before any file is read: no model needed.
        var run = CliRunner.Run("quantize", "--model", Path.Combine(_dir, "missing.safetensors"), option, value);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(option, run.StdErr);
    }

    [Fact]
    public void Bad_quantize_requests_are_refused_with_the_right_exit_code()
    {
        (string data, string model) = TrainSmall();
        var run = CliRunner.Run("quantize", "--model", model, "--data", data, "--observer", "median");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("median", run.StdErr);

        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--per-channel", "--per-tensor");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--per-tensor", run.StdErr);

        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--calibration-samples", "0");
        Assert.Equal(2, run.ExitCode);

        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--calibration-samples", "100000");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("192", run.StdErr);

        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--explain", "pool");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("conv1, conv2, fc1, fc2", run.StdErr);

        run = CliRunner.Run("quantize", "--model", Path.Combine(_dir, "missing.safetensors"), "--data", data);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("missing.safetensors", run.StdErr);

        string existing = Path.Combine(_dir, "keep.safetensors");
        File.WriteAllText(existing, "previous");
        run = CliRunner.Run("quantize", "--model", model, "--data", Path.Combine(_dir, "no-data"), "--out", existing);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal("previous", File.ReadAllText(existing));
    }
}
