using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;
using Engine;
using Engine.Data;
using Engine.IO;
using Engine.Inference;
using Engine.Kernels;
using Engine.Layers;
using Engine.Onnx;
using Engine.Peers;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;

// Our engine against ONNX Runtime and libtorch (TorchSharp) on the same network, weights and inputs, in one process:
//   dotnet run -c Release --project bench/Engine.Peers -- [--model model.safetensors] [--seconds 2] [--out bench/results]
// First it checks that all three compute the same logits, then it times inference (float: ours, ORT, libtorch; int8:
// ours, ORT; batch 1 and 64, threads 1 and 2) and the batch-64 training step (ours, libtorch), and prints the tables
// that bench/README.md quotes. bench/run-peers.sh runs it twice: as the machine is, and with DOTNET_EnableAVX512=0.
//   dotnet run -c Release --project bench/Engine.Peers -- --torch-layers --model model.safetensors
// only times each of libtorch's layers alone at batch 64 (where its time goes).
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

    // libtorch, with our weights copied into an nn.Sequential of the same layers.
    using var peer = new TorchPeer(network);
    float[] torchLogits = peer.Logits(input, 256);
    double torchDiff = ours.Zip(torchLogits).Max(p => Math.Abs(p.First - p.Second));
    int agreeTorch = Enumerable.Range(0, 256).Count(i => ClassScores.ArgMax(ours.AsSpan(i * 10, 10)) == ClassScores.ArgMax(torchLogits.AsSpan(i * 10, 10)));
    report.AppendLine($"libtorch {TorchPeer.Version} float: max |logit difference| {torchDiff:E2} (argmax {agreeTorch}/256).");
    Console.WriteLine(report.ToString().Split('\n')[^2]);
    if (torchDiff > 1e-4)
    {
        Console.Error.WriteLine($"libtorch's float logits differ from ours by {torchDiff} > 1e-4: the timings below would not compare the same computation.");
        return 1;
    }
}

if (args.Contains("--torch-layers"))
{
    // Where libtorch's time goes: each layer alone at batch 64, one and two threads.
    using var peer = new TorchPeer(network);
    foreach (int threads in new[] { 1, 2 })
    {
        torch.set_num_threads(threads);
        Console.WriteLine($"libtorch, batch 64, {threads} thread(s): " +
            string.Join(", ", peer.LayerTimes(Images(64), 64, 30).Select(t => $"{t.Layer} {Ms(t.Milliseconds)} ms")));
    }
    return 0;
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

// What our kernels run on, for the tables' headings: DOTNET_EnableAVX512=0 turns the JIT's AVX-512 off (Vector512 is
// then not accelerated and Avx512F.IsSupported is false), and the kernels take their AVX2 + FMA variants.
string isa = $"our kernels: float GEMM {GemmF32.Best}, int8 GEMM {GemmS8U8.Best} (Vector512 accelerated: {Vector512.IsHardwareAccelerated}, " +
             $"AVX-512F: {Avx512F.IsSupported}, AVX-VNNI: {AvxVnni.IsSupported}, AVX2: {Avx2.IsSupported}, FMA: {Fma.IsSupported}" +
             (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") is { } avx512 ? $"; DOTNET_EnableAVX512={avx512}" : "") + ")";
Console.WriteLine(isa);
var rows = new List<string[]>();
using (var peer = new TorchPeer(network))
{
    foreach (int threads in new[] { 1, 2 })
    {
        network.Threads = threads;
        torch.set_num_threads(threads);
        using InferenceSession ortFloat = Session(floatOnnx, threads, int8: false), ortInt8 = Session(int8Onnx, threads, int8: true);
        // Ours through the Predictor, the embedding front door (inference-only: prepacked weights, fused steps, no
        // backward caches), as ONNX Runtime and libtorch run inference-only too.
        var predictorOptions = new PredictorOptions { Threads = threads };
        Predictor oursFloatPredictor = Predictor.FromNetwork(network, [1, 32, 32], mean, std, predictorOptions);
        Predictor oursInt8Predictor = Predictor.FromNetwork(quantized, predictorOptions);
        foreach (int batch in new[] { 1, 64 })
        {
            float[] input = Images(batch), logits = new float[batch * 10];
            double oursFloat = Median(() => oursFloatPredictor.Predict(input, batch, logits));
            double onnxFloat = Median(() => RunOrt(ortFloat, input, batch, logits));
            double torchFloat = Median(peer.Inference(input, batch));
            double oursInt8 = Median(() => oursInt8Predictor.Predict(input, batch, logits));
            double onnxInt8 = Median(() => RunOrt(ortInt8, input, batch, logits));
            rows.Add([$"{batch}", $"{threads}", Ms(oursFloat), Ms(onnxFloat), Ms(torchFloat), $"{onnxFloat / oursFloat:F2}", $"{torchFloat / oursFloat:F2}",
                      Ms(oursInt8), Ms(onnxInt8), $"{onnxInt8 / oursInt8:F2}", $"{oursFloat / oursInt8:F2}"]);
            Console.WriteLine(string.Join(" | ", rows[^1]));
        }
    }
}
var trainingRows = new List<string[]>();
{
    // The training step at batch 64 on the same 64 test digits: forward, cross-entropy, backward, SGD, with the training
    // defaults (TrainingOptions: lr 0.05, Nesterov momentum 0.9, weight decay 5e-4, label smoothing 0.1) on both sides.
    // Each side trains its own copy of the network, so neither changes the weights the other starts from.
    var defaults = new TrainingOptions();
    float[] images = Images(64);
    int[] labels = Enumerable.Range(0, 64).Select(i => (int)test.Labels[i]).ToArray();
    using var peer = new TorchPeer(network);
    Sequential copy = ModelFile.LoadFloat(ModelFile.ToBytes(network, mean, std, [1, 32, 32]), "copy").Network;
    var x = new FloatTensor(64, 1, 32, 32);
    images.CopyTo(x.Data);
    var loss = new CrossEntropyLoss(defaults.LabelSmoothing);
    var sgd = new Sgd(copy.NamedParameters().Select(p => p.Parameter), defaults.LearningRate, defaults.Momentum, defaults.WeightDecay,
        nesterov: defaults.Nesterov && defaults.Momentum > 0f);
    Action torchStep = peer.TrainingStep(images, labels, defaults);
    foreach (int threads in new[] { 1, 2 })
    {
        copy.Threads = threads;
        torch.set_num_threads(threads);
        double ours = Median(() =>
        {
            copy.ZeroGradients();
            loss.Forward(copy.Forward(x), labels);
            copy.Backward(loss.Backward());
            sgd.Step();
        });
        double theirs = Median(torchStep);
        trainingRows.Add(["64", $"{threads}", Ms(ours), Ms(theirs), $"{theirs / ours:F2}"]);
        Console.WriteLine(string.Join(" | ", trainingRows[^1]));
    }
}

var table = new StringBuilder();
table.AppendLine("| batch | threads | ours float (ms) | ORT float (ms) | libtorch float (ms) | ORT / ours | libtorch / ours | ours int8 (ms) | ORT int8 (ms) | ORT / ours int8 | ours float / ours int8 |");
table.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (string[] r in rows)
{
    table.AppendLine("| " + string.Join(" | ", r) + " |");
}
table.AppendLine();
table.AppendLine("| training step, batch | threads | ours (ms) | libtorch (ms) | libtorch / ours |");
table.AppendLine("| ---: | ---: | ---: | ---: | ---: |");
foreach (string[] r in trainingRows)
{
    table.AppendLine("| " + string.Join(" | ", r) + " |");
}
string header = $"Engine.Peers, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average {LoadAverage()}, " +
                $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}, libtorch {TorchPeer.Version} (TorchSharp), " +
                $"median of single calls over {seconds} s per cell after a warm-up. Ratios above 1 mean ours is faster.\n{isa}.\n\n";
File.WriteAllText(Path.Combine(outDir, "peers.md"), header + report + "\n" + table);
File.WriteAllLines(Path.Combine(outDir, "peers.csv"),
    ["batch,threads,ours_float_ms,ort_float_ms,libtorch_float_ms,ort_over_ours_float,libtorch_over_ours_float,ours_int8_ms,ort_int8_ms,ort_over_ours_int8,ours_float_over_int8",
     .. rows.Select(r => string.Join(",", r))]);
File.WriteAllLines(Path.Combine(outDir, "peers-training.csv"),
    ["batch,threads,ours_ms,libtorch_ms,libtorch_over_ours", .. trainingRows.Select(r => string.Join(",", r))]);
Console.WriteLine();
Console.WriteLine(isa);
Console.Write(table);
return 0;

// The 1-minute load average (Linux), to tell how busy the shared machine was.
static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "unknown";

string Ms(double ms) => ms.ToString(ms < 10 ? "F3" : "F2", CultureInfo.InvariantCulture);

string? Arg(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
