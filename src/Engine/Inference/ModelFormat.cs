namespace Engine.Inference;

/// <summary>The kinds of model file <see cref="Predictor"/> tells apart by their first bytes (docs/file-formats.md).</summary>
public enum ModelFormat
{
    /// <summary>A float safetensors model (<c>format</c> = engine.float, or no format: a PyTorch state_dict), pruned or not.</summary>
    Float,

    /// <summary>An int8 safetensors model (<c>format</c> = engine.int8) that runs on the integer kernels.</summary>
    Int8,

    /// <summary>An ONNX model (a protobuf ModelProto); the Engine.Onnx package reads these.</summary>
    Onnx,
}
