using System.Diagnostics;
using System.Globalization;
using System.Text;
using Engine;
using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Onnx;
using Engine.Peers;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;
using Microsoft.ML.OnnxRuntime;

// Our engine against ONNX Runtime on the same network, weights and inputs, in one process:
//   dotnet run -c Release --project bench/Engine.Peers -- [--model model.safetensors] [--seconds 2] [--out bench/results]
// First it checks that both compute the same logits, then it times inference (float and int8, batch 1 and 64,
// threads 1 and 2) and prints the table that bench/README.md quotes.
//   dotnet run -c Release --project bench/Engine.Peers -- --onnx-check --model model.safetensors [--int8 model.int8.safetensors]
// only checks the ONNX export and import (Engine.Onnx) against ONNX Runtime on the 1,000 bundled test digits.
string? modelPath = Arg("--model");
double seconds = double.Parse(Arg("--seconds") ?? "2", CultureInfo.InvariantCulture);
string outDir = Arg("--out") ?? "bench/results";
string dataDir = Path.Combine(AppContext.BaseDirectory, "data", "mnist");

float mean = MnistPreprocessing.DefaultMean, std = MnistPreprocessing.DefaultStd;
Sequential network;
if (modelPath is not null)
{
    FloatModel model = ModelFile.LoadFloat(modelPath);
    (network, mean, std) = (model.Network, model.InputMean, model.InputStd);
}
else
{
    network = SeedNetwork.Create(seed: 1);
    Console.WriteLine("No --model given: the seed network's initial weights (timings do not depend on the values).");
}
MnistDataset train = MnistDataset.Load(dataDir, MnistSplit.Train), test = MnistDataset.Load(dataDir, MnistSplit.Test);
var options = new QuantizationOptions { Logits = LogitsMode.DequantizedOutput };
QuantizedNetwork quantized = Quantizer.Quantize(network, BatchIterator.Sequential(train, 100, mean, std), 1000, mean, std, options);
byte[] floatOnnx = OnnxExporter.Export(network, [1, 32, 32], mean, std), int8Onnx = OnnxExporter.Export(quantized);
Directory.CreateDirectory(outDir);

if (args.Contains("--onnx-check"))
{
    network.Threads = 2;
    var int8Networks = new List<(string, QuantizedNetwork)>
    {
        ("per-channel, dequantized-output logits", quantized),
        ("per-channel, int32-accumulator logits", Quantizer.Quantize(network, BatchIterator.Sequential(train, 100, mean, std), 1000, mean, std)),
    };
    if (Arg("--int8") is string int8Path)
    {
        int8Networks.Add(($"{Path.GetFileName(int8Path)}", QuantizedModelFile.Load(int8Path)));
    }
    return OnnxCheck.Run(network, mean, std, int8Networks, Images(test.Count), test.Count, outDir);
}

float[] Images(int n)
{
    float[] images = new float[n * 1024];
    ((IBatchSource)BatchIterator.Sequential(test, n, mean, std)).FillBatch(0, 0, n, images, new int[n]);
    return images;
}

InferenceSession Session(byte[] model, int threads, bool int8)
{
    var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    so.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
    if (int8)
    {
        // Exact u8 x s8 products (docs/quantization.md, "4. The integer GEMM, and the saturation hazard": the default kernels saturate on this CPU, which has no VNNI in ORT's eyes).
        so.AddSessionConfigEntry("session.x64quantprecision", "1");
    }
    return new InferenceSession(model, so);
}

void RunOrt(InferenceSession session, float[] input, int n, float[] logits)
{
    using var x = OrtValue.CreateTensorValueFromMemory(input, [n, 1, 32, 32]);
    using var y = OrtValue.CreateTensorValueFromMemory(logits, [n, 10]);
    session.Run(new RunOptions(), [OnnxExporter.InputName], [x], [OnnxExporter.OutputName], [y]);
}

// 1. Same logits.
var report = new StringBuilder();
{
    float[] input = Images(256);
    network.Threads = 2;
    var x = new FloatTensor(256, 1, 32, 32);
    input.CopyTo(x.Data);
    float[] ours = network.Forward(x).Data.ToArray();
    float[] theirs = new float[ours.Length];
    using (var s = Session(floatOnnx, 2, int8: false)) RunOrt(s, input, 256, theirs);
    double floatDiff = ours.Zip(theirs).Max(p => Math.Abs(p.First - p.Second));

    float[] ours8 = new float[2560], theirs8 = new float[2560];
    quantized.Predict(input, 256, ours8);
    using (var s = Session(int8Onnx, 2, int8: true)) RunOrt(s, input, 256, theirs8);
    float step = quantized.Layers[^1].Output.Scale;
    double int8Steps = ours8.Zip(theirs8).Max(p => Math.Abs(p.First - p.Second)) / step;
    int agree = Enumerable.Range(0, 256).Count(i => ClassScores.ArgMax(ours8.AsSpan(i * 10, 10)) == ClassScores.ArgMax(theirs8.AsSpan(i * 10, 10)));
    int agreeFloat = Enumerable.Range(0, 256).Count(i => ClassScores.ArgMax(ours.AsSpan(i * 10, 10)) == ClassScores.ArgMax(theirs.AsSpan(i * 10, 10)));
    report.AppendLine($"Agreement on 256 test digits: float max |logit difference| {floatDiff:E2} (argmax {agreeFloat}/256); " +
                      $"int8 max difference {int8Steps:F2} output steps (step {step:G4}), argmax {agree}/256.");
    Console.Write(report);
    if (floatDiff > 1e-4)
    {
        Console.Error.WriteLine($"float logits differ by {floatDiff} > 1e-4: the timings below would not compare the same computation.");
        return 1;
    }
}

// 2. Timings: median of single calls, each configuration measured back to back.
double Median(Action run)
{
    for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < Math.Min(0.5, seconds / 4);)
    {
        run();
    }
    var times = new List<double>();
    for (var total = Stopwatch.StartNew(); total.Elapsed.TotalSeconds < seconds || times.Count < 10;)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }
    times.Sort();
    return times[times.Count / 2];
}

var rows = new List<string[]>();
foreach (int threads in new[] { 1, 2 })
{
    network.Threads = threads;
    using InferenceSession ortFloat = Session(floatOnnx, threads, int8: false), ortInt8 = Session(int8Onnx, threads, int8: true);
    foreach (int batch in new[] { 1, 64 })
    {
        float[] input = Images(batch), logits = new float[batch * 10];
        var x = new FloatTensor(batch, 1, 32, 32);
        input.CopyTo(x.Data);
        double oursFloat = Median(() => network.Forward(x));
        double onnxFloat = Median(() => RunOrt(ortFloat, input, batch, logits));
        double oursInt8 = Median(() => quantized.Predict(input, batch, logits, threads));
        double onnxInt8 = Median(() => RunOrt(ortInt8, input, batch, logits));
        rows.Add([$"{batch}", $"{threads}", Ms(oursFloat), Ms(onnxFloat), $"{onnxFloat / oursFloat:F2}", Ms(oursInt8), Ms(onnxInt8), $"{onnxInt8 / oursInt8:F2}", $"{oursFloat / oursInt8:F2}"]);
        Console.WriteLine(string.Join(" | ", rows[^1]));
    }
}
{
    // Our training step at batch 64 (forward, loss, backward, SGD with momentum); libtorch, the peer for it, does not load here.
    var x = new FloatTensor(64, 1, 32, 32);
    Images(64).CopyTo(x.Data);
    int[] labels = Enumerable.Range(0, 64).Select(i => test.Labels[i] + 0).ToArray();
    var loss = new CrossEntropyLoss();
    var sgd = new Sgd(network.NamedParameters().Select(p => p.Parameter), 0.001f, 0.9f);
    foreach (int threads in new[] { 1, 2 })
    {
        network.Threads = threads;
        double step = Median(() =>
        {
            network.ZeroGradients();
            loss.Forward(network.Forward(x), labels);
            network.Backward(loss.Backward());
            sgd.Step();
        });
        report.AppendLine($"Our training step, batch 64, {threads} thread(s): {Ms(step)} ms median.");
        Console.WriteLine(report.ToString().Split('\n')[^2]);
    }
}

var table = new StringBuilder();
table.AppendLine("| batch | threads | ours float (ms) | ORT float (ms) | ORT / ours | ours int8 (ms) | ORT int8 (ms) | ORT / ours | ours float / ours int8 |");
table.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (string[] r in rows)
{
    table.AppendLine("| " + string.Join(" | ", r) + " |");
}
string header = $"Engine.Peers, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, ONNX Runtime {OrtEnv.Instance().GetVersionString()}, " +
                $"median of single calls over {seconds} s per cell. Ratios above 1 mean ours is faster.\n\n";
File.WriteAllText(Path.Combine(outDir, "peers.md"), header + report + "\n" + table);
File.WriteAllLines(Path.Combine(outDir, "peers.csv"),
    ["batch,threads,ours_float_ms,ort_float_ms,ort_over_ours_float,ours_int8_ms,ort_int8_ms,ort_over_ours_int8,ours_float_over_int8", .. rows.Select(r => string.Join(",", r))]);
Console.WriteLine();
Console.Write(table);
return 0;

string Ms(double ms) => ms.ToString(ms < 10 ? "F3" : "F2", CultureInfo.InvariantCulture);

string? Arg(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
