using Engine.Inference;
using Engine.IO;
using Engine.Onnx;

namespace Engine.Cli;

/// <summary>
/// Opens any model file a command is given: safetensors (float, pruned, int8) through the library's
/// <see cref="Predictor"/>, ONNX through Engine.Onnx, told apart by the file's first bytes, not its name.
/// </summary>
internal static class ModelLoader
{
    /// <summary>The predictor for <paramref name="path"/> and the format name reports use (engine.float, engine.int8 or onnx).</summary>
    public static (Predictor Model, string Format) Load(string path, int threads)
    {
        var options = new PredictorOptions { Threads = threads };
        return CommonOptions.RequireModelFile(path, "--model") switch
        {
            ModelFormat.Onnx => (OnnxModel.Load(path).ToPredictor(options), "onnx"),
            ModelFormat.Int8 => (Predictor.Load(path, options), QuantizedModelFile.Int8Format),
            _ => (Predictor.Load(path, options), ModelFile.FloatFormat),
        };
    }

    /// <summary>Weights and biases of the network behind <paramref name="model"/>.</summary>
    public static long ParameterCount(Predictor model) => model.QuantizedNetwork is { } int8
        ? int8.Layers.OfType<Quantization.QuantizedWeightedLayer>().Sum(l => (long)l.Weights.Length + l.Bias.Length)
        : model.FloatNetwork!.Network.ParameterCount;
}
