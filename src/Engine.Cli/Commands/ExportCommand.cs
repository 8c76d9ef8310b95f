using System.CommandLine;
using System.Text.Json.Nodes;
using Engine.Inference;
using Engine.IO;
using Engine.Onnx;
using Engine.Quantization;

namespace Engine.Cli.Commands;

/// <summary><c>engine export</c>: a float or int8 model file written in another format (ONNX, docs/onnx.md).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model file to export (float or int8 safetensors).", Required = true };
        var format = new Option<string>("--format") { Description = "Output format: onnx.", DefaultValueFactory = _ => "onnx" };
        format.AcceptOnlyFromAmong("onnx");
        var output = new Option<string>("--out") { Description = "Write the exported model here.", Required = true };
        var json = CommonOptions.Json();
        var command = new Command("export", "Write a model in another format (ONNX: float Conv/Gemm graph, or int8 QDQ graph).") { model, format, output, json };
        command.SetAction(parse => CliErrors.Run(() => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(json))));
        return command;
    }

    private static int Run(string modelPath, string outPath, bool json)
    {
        CommonOptions.RequireWritableTarget(outPath, "--out");
        // The format is told from the file's header, as the Predictor does; each loader refuses the other format.
        ModelFormat format = CommonOptions.RequireModelFile(modelPath, "--model");
        if (format == ModelFormat.Onnx)
        {
            throw new InvalidDataException($"{Path.GetFileName(modelPath)} is already an ONNX model.");
        }
        string source = format == ModelFormat.Int8 ? QuantizedModelFile.Int8Format : ModelFile.FloatFormat;
        byte[] onnx;
        string description;
        if (format == ModelFormat.Int8)
        {
            QuantizedNetwork network = QuantizedModelFile.Load(modelPath);
            onnx = OnnxExporter.Export(network);
            description = $"int8 QDQ graph, {(network.Logits == LogitsMode.Int32Accumulator ? "integer last layer" : "dequantized-output logits")}";
        }
        else
        {
            FloatModel loaded = ModelFile.LoadFloat(modelPath);
            onnx = OnnxExporter.Export(loaded.Network, loaded.InputShape, loaded.InputMean, loaded.InputStd);
            description = "float graph";
        }
        OnnxExporter.Save(onnx, outPath);
        ConsoleReport.Line($"Wrote {outPath}: {Path.GetFileName(modelPath)} ({source}) as ONNX opset {OnnxExporter.Opset}, {description}, {onnx.Length:N0} bytes.");
        if (json)
        {
            ConsoleReport.Json(new JsonObject
            {
                ["path"] = outPath,
                ["format"] = "onnx",
                ["source_format"] = source,
                ["bytes"] = onnx.Length,
            });
        }
        return ExitCodes.Success;
    }
}
