using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>[C, H, W] -> [C H W] in the same (channel-major) order, as torch.flatten(x, 1); codes and parameters unchanged.</summary>
public sealed class QuantizedFlatten(string name, QuantParams parameters) : QuantizedLayer(name, parameters, parameters)
{
    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape) => [Size(sampleShape)];

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace) =>
        input[..(samples * Size(sampleShape))].CopyTo(output);

    /// <inheritdoc/>
    public override string ToString() => "QuantizedFlatten()";
}
