using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;

namespace Engine.Tests.Cli;

/// <summary>Runs the real `engine` executable as a child process, so exit codes and output are what a user sees.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public JsonElement LastJson()
        {
            string line = StdOut.TrimEnd().Split('\n')[^1];
            return JsonDocument.Parse(line).RootElement;
        }
    }

    public static Result Run(params string[] args) => Run(TimeSpan.FromMinutes(3), args);

    public static Result Run(TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"engine {string.Join(' ', args)} did not finish in {timeout.TotalMinutes:F0} minutes.");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts the executable with standard output and error redirected, for tests that act while it runs.</summary>
    public static Process Start(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Engine.Cli.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        return Process.Start(start)!;
    }

    /// <summary>
    /// Starts the executable, sends it SIGINT (Ctrl-C) as soon as it prints a standard-output line that satisfies
    /// <paramref name="ready"/>, and asserts that it stopped as the contract says: exit code 130 and
    /// "interrupted; nothing was written." on standard error. (Skipped on Windows, which has no kill(1).)
    /// </summary>
    public static async Task AssertInterruptedCleanly(Func<string, bool> ready, params string[] args)
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "sends SIGINT with kill(1).");
        using var process = Start(args);
        var seen = new TaskCompletionSource();
        var stderr = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && ready(line))
            {
                seen.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await seen.Task.WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);

        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill!.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);   // also drains the redirected streams
        Assert.Equal(130, process.ExitCode);
        lock (stderr)
        {
            Assert.Contains("engine: error: interrupted; nothing was written.", stderr.ToString());
        }
    }

    /// <summary>
    /// The accuracy of a model file on the test split of <paramref name="dataDirectory"/>, computed here, in process and
    /// sample by sample through <see cref="Engine.Inference.Predictor.Classify"/>: a value the command did not compute.
    /// </summary>
    public static float Accuracy(string modelPath, string dataDirectory)
    {
        (int Predicted, int Label)[] predictions = Predictions(modelPath, dataDirectory);
        return (float)predictions.Count(p => p.Predicted == p.Label) / predictions.Length;
    }

    /// <summary>The class a model file predicts for each test digit of <paramref name="dataDirectory"/>, with the label.</summary>
    public static (int Predicted, int Label)[] Predictions(string modelPath, string dataDirectory)
    {
        var model = Engine.Inference.Predictor.Load(modelPath);
        var test = Engine.Data.MnistDataset.Load(dataDirectory, Engine.Data.MnistSplit.Test);
        var result = new (int, int)[test.Count];
        var input = new float[model.InputLength];
        for (int n = 0; n < test.Count; n++)
        {
            model.PreparePixels(test.Pixels.AsSpan(n * 28 * 28, 28 * 28), 28, 28, input);
            result[n] = (model.Classify(input), test.Labels[n]);
        }
        return result;
    }

    /// <summary>A directory with a small MNIST in IDX format: the first samples of the bundled subset, gzip-compressed.</summary>
    public static string SmallDataDirectory(string root, int train, int test)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "data", "mnist");
        var trainSet = Engine.Data.MnistDataset.Load(source, Engine.Data.MnistSplit.Train).Take(train);
        var testSet = Engine.Data.MnistDataset.Load(source, Engine.Data.MnistSplit.Test).Take(test);
        Directory.CreateDirectory(root);
        WriteIdx(Path.Combine(root, "train-images-idx3-ubyte.gz"), 0x803, [trainSet.Count, 28, 28], trainSet.Pixels);
        WriteIdx(Path.Combine(root, "train-labels-idx1-ubyte.gz"), 0x801, [trainSet.Count], trainSet.Labels);
        WriteIdx(Path.Combine(root, "t10k-images-idx3-ubyte.gz"), 0x803, [testSet.Count, 28, 28], testSet.Pixels);
        WriteIdx(Path.Combine(root, "t10k-labels-idx1-ubyte.gz"), 0x801, [testSet.Count], testSet.Labels);
        return root;
    }

    /// <summary>
    /// A float model and its gradient statistics from one epoch on 192 training digits (64 test digits), all in
    /// <paramref name="dir"/>: the quick model the pruning and compression commands are tried on.
    /// </summary>
    public static (string Data, string Model, string Stats) TrainSmall(string dir)
    {
        string data = SmallDataDirectory(Path.Combine(dir, "data"), train: 192, test: 64);
        string model = Path.Combine(dir, "model.safetensors"), stats = Path.Combine(dir, "stats.safetensors");
        var run = Run("train", "--data", data, "--epochs", "1", "--out", model, "--track-grad-stats", stats);
        Assert.True(run.ExitCode == 0, run.StdErr + run.StdOut);
        Assert.Contains("gradient statistics over 6 steps", run.StdOut);
        return (data, model, stats);
    }

    public static void WriteIdx(string path, int magic, int[] dims, byte[] payload)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        Span<byte> word = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(word, magic);
        gzip.Write(word);
        foreach (int d in dims)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(word, d);
            gzip.Write(word);
        }
        gzip.Write(payload);
    }

    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "engine-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
