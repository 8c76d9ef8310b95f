using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Quantization;

/// <summary>
/// The rounding of the integer average pool, in float, for quantization-aware training: placed after an
/// <see cref="AvgPool2d"/> whose input was fake-quantized by <see cref="Source"/>, it rounds each window mean of codes
/// half away from zero as <see cref="AvgPoolQ8"/> does. The float pool gives y = s (mean(q) - z); the mean of the
/// codes is m = y / s + z, first snapped to the nearest multiple of 1 / (kernel area) (the exact mean of integers,
/// removing float rounding error) and then rounded: y' = s (round_half_away(m) - z), with the source's s and z (pooling
/// keeps scale and zero point). Backward passes the gradient through unchanged (straight-through; the mean of codes in
/// [0, 255] is never clamped).
/// </summary>
public sealed class FakeQuantizePoolRounding : Layer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private bool _hasForward;

    /// <summary>Rounding for a pool with <paramref name="kernelSize"/> x <paramref name="kernelSize"/> windows over <paramref name="source"/>'s codes.</summary>
    public FakeQuantizePoolRounding(FakeQuantize source, int kernelSize)
    {
        Source = source ?? throw new ArgumentNullException(nameof(source));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kernelSize);
        KernelSize = kernelSize;
    }

    /// <summary>The fake quantization of the pool's input, whose parameters the pool keeps.</summary>
    public FakeQuantize Source { get; }

    /// <summary>Side of the pool's square window.</summary>
    public int KernelSize { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape) => inputShape.ToArray();

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        _output.Resize(input.Shape);
        Apply(input.Data, _output.Data);
        _hasForward = true;
        return _output;
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        if (!_hasForward)
        {
            throw new InvalidOperationException($"{Description}: Backward called before Forward.");
        }
        RequireGradientShape(outputGradient, _output, Description);
        if (!ComputeInputGradient)
        {
            return null;
        }
        _inputGradient.Resize(_output.Shape);
        outputGradient.Data.CopyTo(_inputGradient.Data);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace) => Apply(input[..output.Length], output);

    private void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        if (!Source.Quantizes)
        {
            x.CopyTo(y);
            return;
        }
        QuantParams p = Source.Activation;
        float area = KernelSize * KernelSize;
        for (int i = 0; i < x.Length; i++)
        {
            float mean = MathF.Round((x[i] / p.Scale + p.ZeroPoint) * area) / area;
            int code = Math.Clamp((int)MathF.Round(mean, MidpointRounding.AwayFromZero), p.QMin, p.QMax);
            y[i] = p.Dequantize(code);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"FakeQuantizePoolRounding(kernel_size={KernelSize})";
}
