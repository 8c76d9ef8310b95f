using System.Globalization;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;

namespace Engine.Tests.Cli;

/// <summary>
/// <c>engine bench</c> on the bundled models with short runs. Speed is never asserted here (bench/README.md measures
/// it): only that the figures are present and hang together.
/// </summary>
public sealed class BenchCliTests : IDisposable
{
    private static readonly string FloatModel = Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.safetensors");
    private static readonly string Int8Model = Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.int8.safetensors");

    private readonly string _dir = CliRunner.TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Bench_of_the_float_model_with_train_reports_sane_inference_and_training_figures()
    {
        var run = CliRunner.Run("bench", "--model", FloatModel, "--batch-size", "8", "--threads", "1", "--seconds", "0.2", "--warmup", "0.1", "--train", "--json");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        JsonElement json = run.LastJson();
        Assert.Equal(FloatModel, json.GetProperty("model").GetString());
        Assert.Equal("engine.float", json.GetProperty("format").GetString());
        Assert.Equal(Engine.Layers.SeedNetwork.Create(1).ParameterCount, json.GetProperty("parameters").GetInt64());
        Assert.Equal(1, json.GetProperty("threads").GetInt32());
        AssertSaneInference(json, batch: 8, seconds: 0.2);

        double step = json.GetProperty("train_step_ms").GetDouble(), step90 = json.GetProperty("train_p90_ms").GetDouble();
        Assert.True(step > 0, $"train_step_ms {step}");
        Assert.True(step90 >= step, $"train_p90_ms {step90} below the median {step}");
        Assert.True(json.GetProperty("train_steps").GetInt32() >= 3);
        // Nothing allocated once warm by the thread that makes the calls and times them (AllocationTests counts the
        // Predictor's workers too).
        Assert.Equal(0, json.GetProperty("allocated_bytes").GetInt64());
        Assert.Equal(0, json.GetProperty("train_allocated_bytes").GetInt64());
        AssertMachine(json.GetProperty("machine"));

        Assert.Contains("inference", run.StdOut);
        Assert.Contains("training step", run.StdOut);
        Assert.Contains("Machine: ", run.StdOut);
    }

    [Fact]
    public void Bench_of_the_int8_model_writes_the_json_file_it_is_given()
    {
        string path = Path.Combine(_dir, "bench.json");
        var run = CliRunner.Run("bench", "--model", Int8Model, "--batch-size", "3", "--threads", "2", "--seconds", "0.2", "--warmup", "0.1", "--json", path);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        Assert.Contains($"Wrote {path}.", run.StdOut);
        Assert.DoesNotContain("{", run.StdOut);   // the JSON went to the file, not to standard output
        JsonElement json = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.Equal("engine.int8", json.GetProperty("format").GetString());
        Assert.Equal(2, json.GetProperty("threads").GetInt32());
        AssertSaneInference(json, batch: 3, seconds: 0.2);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("train_step_ms").ValueKind);
        Assert.Equal(0, json.GetProperty("allocated_bytes").GetInt64());
        AssertMachine(json.GetProperty("machine"));
    }

    [Fact]
    public void Bench_of_a_narrower_float_model_counts_its_own_parameters_and_trains_it()
    {
        // The shape a structurally pruned model has: every layer narrower, the same input and classes.
        var network = Engine.Layers.SeedNetwork.Create(3, conv1Channels: 12, conv2Channels: 20, hidden: 40);
        string model = Path.Combine(_dir, "narrow.safetensors");
        Engine.IO.ModelFile.SaveFloat(network, model, Engine.Data.MnistPreprocessing.DefaultMean, Engine.Data.MnistPreprocessing.DefaultStd, [1, 32, 32]);
        var run = CliRunner.Run("bench", "--model", model, "--batch-size", "1", "--seconds", "0.2", "--warmup", "0.1", "--train", "--json", "-");
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        JsonElement json = run.LastJson();
        Assert.Equal(network.ParameterCount, json.GetProperty("parameters").GetInt64());
        AssertSaneInference(json, batch: 1, seconds: 0.2);
        Assert.True(json.GetProperty("train_step_ms").GetDouble() > 0);
    }

    [Fact]
    public void Train_is_refused_for_an_int8_model_before_any_timing()
    {
        var run = CliRunner.Run("bench", "--model", Int8Model, "--train", "--seconds", "0.2");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("engine: error: --train needs a float model: seed1.int8.safetensors is engine.int8", run.StdErr);
        Assert.DoesNotContain("inference", run.StdOut);
        Assert.DoesNotContain("   at ", run.StdErr);
    }

    [Theory]
    [InlineData("--batch-size must be a whole number from 1 to 1024, got 0", "--batch-size", "0")]
    [InlineData("--batch-size must be a whole number from 1 to 1024, got 5000", "--batch-size", "5000")]
    [InlineData("--seconds must be greater than 0 and at most 3600, got 0", "--seconds", "0")]
    [InlineData("--seconds must be greater than 0 and at most 3600, got -1", "--seconds", "-1")]
    [InlineData("--seconds must be greater than 0 and at most 3600, got NaN", "--seconds", "NaN")]
    [InlineData("--seconds: 'soon' is not a number", "--seconds", "soon")]
    [InlineData("--threads must be a whole number from 1 to", "--threads", "0")]
    [InlineData("--threads must be a whole number from 1 to", "--threads", "100000")]
    [InlineData("--warmup must be at least 0 and at most 60, got -1", "--warmup", "-1")]
    public void Bad_values_exit_with_2_naming_the_option(string expected, string option, string value)
    {
        var run = CliRunner.Run("bench", "--model", FloatModel, option, value);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains($"engine: error: {expected}", run.StdErr);
        Assert.DoesNotContain("System.", run.StdErr);
        Assert.Empty(run.StdOut);
    }

    [Fact]
    public void A_missing_model_or_json_directory_is_named()
    {
        var run = CliRunner.Run("bench", "--model", Path.Combine(_dir, "absent.safetensors"), "--seconds", "0.2");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--model: file", run.StdErr);
        Assert.Contains("absent.safetensors' not found", run.StdErr);

        run = CliRunner.Run("bench", "--model", FloatModel, "--seconds", "0.2", "--json", Path.Combine(_dir, "no", "such", "bench.json"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--json: directory", run.StdErr);
        Assert.Empty(run.StdOut);

        run = CliRunner.Run("bench");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("Option '--model' is required", run.StdErr);
    }

    // Figures that must hang together whatever the machine's speed.
    private static void AssertSaneInference(JsonElement json, int batch, double seconds)
    {
        Assert.Equal(batch, json.GetProperty("batch_size").GetInt32());
        int calls = json.GetProperty("calls").GetInt32();
        double wall = json.GetProperty("seconds").GetDouble();
        double median = json.GetProperty("latency_ms").GetDouble(), p90 = json.GetProperty("p90_ms").GetDouble(), mean = json.GetProperty("mean_ms").GetDouble();
        double perSecond = json.GetProperty("samples_per_second").GetDouble();
        Assert.True(calls > 0, $"calls {calls}");
        Assert.True(json.GetProperty("warmup_calls").GetInt32() >= 3);
        Assert.True(wall >= seconds, $"timed for {wall} s, asked {seconds}");
        Assert.True(median > 0 && mean > 0, $"median {median} ms, mean {mean} ms");
        Assert.True(p90 >= median, $"p90 {p90} ms below the median {median} ms");
        // The run's wall time holds every call, so throughput is at most batch / mean (and, as half the calls take at
        // least the median, at most 2 batch / median); the time between calls is two clock reads, so it is not far below.
        double fromMean = batch * 1000.0 / mean;
        Assert.True(perSecond <= fromMean * 1.01, $"{perSecond} samples/s, more than batch / mean = {fromMean}");
        Assert.True(perSecond <= 2 * batch * 1000.0 / median * 1.01, $"{perSecond} samples/s against a median of {median} ms");
        Assert.True(perSecond >= fromMean * 0.5, $"{perSecond} samples/s, far below batch / mean = {fromMean}");
        Assert.Equal(calls * batch / wall, perSecond, perSecond * 1e-3 + 0.01);
    }

    private static void AssertMachine(JsonElement machine)
    {
        Assert.Equal(Environment.ProcessorCount, machine.GetProperty("processor_count").GetInt32());
        Assert.Equal(Vector512.IsHardwareAccelerated, machine.GetProperty("vector512_hardware_accelerated").GetBoolean());
        Assert.Equal(Avx512F.IsSupported, machine.GetProperty("avx512f").GetBoolean());
        Assert.Equal(AvxVnni.IsSupported, machine.GetProperty("avx_vnni").GetBoolean());
        Assert.Equal(Avx2.IsSupported, machine.GetProperty("avx2").GetBoolean());
        Assert.Equal(Fma.IsSupported, machine.GetProperty("fma").GetBoolean());
        Assert.Equal(Engine.Kernels.GemmF32.Best.ToString(), machine.GetProperty("float_gemm").GetString());
        Assert.Equal(Engine.Kernels.GemmS8U8.Best.ToString(), machine.GetProperty("int8_gemm").GetString());
        Assert.Contains(".NET", machine.GetProperty("dotnet").GetString());
        Assert.False(string.IsNullOrWhiteSpace(machine.GetProperty("os").GetString()));
        DateTime date = DateTime.ParseExact(machine.GetProperty("date").GetString()!, "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        Assert.InRange(date, DateTime.UtcNow.AddHours(-1), DateTime.UtcNow.AddMinutes(1));
    }
}
