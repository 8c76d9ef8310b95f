namespace Engine.Tests.Cli;

public sealed class OnnxCliTests : IDisposable
{
    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Export_writes_float_and_int8_onnx_that_eval_scores_like_the_safetensors_files()
    {
        string data = CliRunner.SmallDataDirectory(Path.Combine(_dir, "data"), train: 192, test: 64);
        string model = Path.Combine(_dir, "model.safetensors"), int8 = Path.Combine(_dir, "int8.safetensors");
        var run = CliRunner.Run("train", "--data", data, "--epochs", "1", "--out", model);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        run = CliRunner.Run("quantize", "--model", model, "--data", data, "--calibration-samples", "96", "--out", int8);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);

        foreach ((string source, string expectedFormat) in new[] { (model, "engine.float"), (int8, "engine.int8") })
        {
            string onnx = Path.ChangeExtension(source, ".onnx");
            var export = CliRunner.Run("export", "--model", source, "--format", "onnx", "--out", onnx, "--json");
            Assert.True(export.ExitCode == 0, export.StdErr + export.StdOut);
            Assert.Equal(onnx, export.LastJson().GetProperty("path").GetString());
            Assert.Equal("onnx", export.LastJson().GetProperty("format").GetString());
            Assert.Equal(expectedFormat, export.LastJson().GetProperty("source_format").GetString());
            Assert.Equal(new FileInfo(onnx).Length, export.LastJson().GetProperty("bytes").GetInt64());

            var original = CliRunner.Run("eval", "--model", source, "--data", data, "--json");
            var viaOnnx = CliRunner.Run("eval", "--model", onnx, "--data", data, "--json");
            Assert.True(viaOnnx.ExitCode == 0, viaOnnx.StdErr + viaOnnx.StdOut);
            Assert.Equal("onnx", viaOnnx.LastJson().GetProperty("format").GetString());
            Assert.Equal(original.LastJson().GetProperty("accuracy").GetSingle(), viaOnnx.LastJson().GetProperty("accuracy").GetSingle());
            Assert.Equal(original.LastJson().GetProperty("parameters").GetInt64(), viaOnnx.LastJson().GetProperty("parameters").GetInt64());
        }
    }

    [Fact]
    public void Bad_export_requests_and_bad_onnx_files_get_the_right_exit_codes()
    {
        string missing = Path.Combine(_dir, "missing.safetensors");
        var run = CliRunner.Run("export", "--model", missing, "--format", "tflite", "--out", Path.Combine(_dir, "m.onnx"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("tflite", run.StdErr);

        run = CliRunner.Run("export", "--model", missing, "--out", Path.Combine(_dir, "no-such-dir", "m.onnx"));
        Assert.Equal(2, run.ExitCode);

        run = CliRunner.Run("export", "--model", missing, "--out", Path.Combine(_dir, "m.onnx"));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("missing.safetensors", run.StdErr);

        string broken = Path.Combine(_dir, "broken.onnx");
        File.WriteAllBytes(broken, [0x3A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
        run = CliRunner.Run("eval", "--model", broken);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("broken.onnx", run.StdErr);
    }
}
