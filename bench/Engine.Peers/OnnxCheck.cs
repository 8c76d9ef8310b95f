using System.Text;
using Engine.Data;
using Engine.Layers;
using Engine.Onnx;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Peers;

/// <summary>
/// The ONNX round trip against ONNX Runtime: our float and int8 networks exported with <see cref="OnnxExporter"/>, run
/// in ONNX Runtime and compared with our own logits on the same normalised images; then each ONNX file imported back
/// with <see cref="OnnxModel"/> and compared with the network it came from.
/// </summary>
internal static class OnnxCheck
{
    public static int Run(Sequential network, float mean, float std, IReadOnlyList<(string Label, QuantizedNetwork Network)> int8Networks,
        float[] images, int samples, string outDir)
    {
        var report = new StringBuilder();
        void Line(string text)
        {
            Console.WriteLine(text);
            report.AppendLine(text);
        }
        int classes = 10;
        bool ok = true;

        // Float.
        byte[] floatOnnx = OnnxExporter.Export(network, [1, 32, 32], mean, std);
        var x = new FloatTensor(samples, 1, 32, 32);
        images.CopyTo(x.Data);
        float[] ours = network.Forward(x).Data.ToArray();
        float[] theirs = RunOrt(floatOnnx, images, samples, classes, exactInt8: false, optimized: true);
        float[] imported = OnnxModel.Load(floatOnnx, "float.onnx").Float!.Forward(x).Data.ToArray();
        double floatDiff = MaxAbs(ours, theirs);
        Line($"float ({floatOnnx.Length:N0} bytes): ONNX Runtime against ours on {samples} test digits: max |logit difference| {floatDiff:E2} (limit 1e-4), " +
             $"arg-max agreement {Agree(ours, theirs, samples, classes)}/{samples}; imported back: max |difference| {MaxAbs(ours, imported):E2}, " +
             $"arg-max {Agree(ours, imported, samples, classes)}/{samples}.");
        ok &= floatDiff <= 1e-4;

        // Int8: ONNX Runtime fusing the QDQ graph into its integer kernels, with exact int8 products (session.x64quantprecision
        // = 1) and with its default kernels; and without graph optimizations, running each operator as the standard defines it.
        foreach ((string label, QuantizedNetwork q) in int8Networks)
        {
            byte[] onnx = OnnxExporter.Export(q);
            float[] ours8 = new float[samples * classes];
            q.Predict(images, samples, ours8);
            float[] back = new float[ours8.Length];
            OnnxModel.Load(onnx, "int8.onnx").Int8!.Predict(images, samples, back);
            // One output step: the scale of the last layer's uint8 output (calibrated even when the logits are read off
            // the int32 accumulators, where it is the step a dequantized-output network would have).
            float step = q.Layers[^1].Output.Scale;
            foreach ((bool exact, bool optimized, string how) in Sessions)
            {
                float[] ort = RunOrt(onnx, images, samples, classes, exact, optimized);
                double diff = MaxAbs(ours8, ort);
                int differing = ours8.Zip(ort).Count(p => p.First != p.Second);
                Line($"int8 {label} ({onnx.Length:N0} bytes), ONNX Runtime {how}: max |logit difference| {diff:G4} = " +
                     $"{diff / step:F2} output steps (step {step:G4}); {differing}/{ours8.Length} logits differ; arg-max agreement {Agree(ours8, ort, samples, classes)}/{samples}.");
            }
            double backDiff = MaxAbs(ours8, back);
            Line($"int8 {label}: imported back: max |logit difference| {backDiff:G4}, arg-max {Agree(ours8, back, samples, classes)}/{samples}.");
            ok &= backDiff == 0;
        }
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "onnx-check.md"),
            $"Engine.Peers --onnx-check, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, ONNX Runtime {OrtEnv.Instance().GetVersionString()}, {samples} test digits.\n\n" + report);
        return ok ? 0 : 1;
    }

    private static readonly (bool Exact, bool Optimized, string How)[] Sessions =
    [
        (true, true, "fused, exact products"),
        (false, true, "fused, default kernels"),
        (true, false, "no graph optimizations"),
    ];

    private static float[] RunOrt(byte[] model, float[] input, int samples, int classes, bool exactInt8, bool optimized)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 2,
            GraphOptimizationLevel = optimized ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
        };
        if (exactInt8)
        {
            options.AddSessionConfigEntry("session.x64quantprecision", "1");
        }
        using var session = new InferenceSession(model, options);
        float[] logits = new float[samples * classes];
        using var x = OrtValue.CreateTensorValueFromMemory(input, [samples, 1, 32, 32]);
        using var y = OrtValue.CreateTensorValueFromMemory(logits, [samples, classes]);
        using var run = new RunOptions();
        session.Run(run, [OnnxExporter.InputName], [x], [OnnxExporter.OutputName], [y]);
        return logits;
    }

    private static double MaxAbs(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    private static int Agree(float[] a, float[] b, int samples, int classes) =>
        Enumerable.Range(0, samples).Count(i => ClassScores.ArgMax(a.AsSpan(i * classes, classes)) == ClassScores.ArgMax(b.AsSpan(i * classes, classes)));
}
