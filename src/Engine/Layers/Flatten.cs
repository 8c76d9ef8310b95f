using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// [N, C, H, W] -> [N, C H W], keeping the row-major (channel-major) order, as torch.flatten(x, 1): element
/// (c, h, w) of a sample lands at column (c H + h) W + w. Backward reshapes the gradient back.
/// </summary>
public sealed class Flatten : Layer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private int[]? _inputShape;

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        if (inputShape.Length < 2)
        {
            throw new ArgumentException($"Flatten: expected an input [N, ...] of rank 2 or more, got {FloatTensor.Format(inputShape)}.");
        }
        long features = 1;
        foreach (int d in inputShape[1..])
        {
            features *= d;
            if (features > int.MaxValue)
            {
                throw new ArgumentException($"Flatten: {FloatTensor.Format(inputShape)} has more than {int.MaxValue} features per sample.");
            }
        }
        return [inputShape[0], (int)features];
    }

    /// <inheritdoc/>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace) => input.CopyTo(output);   // row-major [C, H, W] already is the channel-major vector

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        if (input.Shape.Length < 2)
        {
            OutputShape(input.Shape);               // throws with the message
        }
        int features = 1;
        foreach (int d in input.Shape[1..])
        {
            features *= d;
        }
        _output.Resize([input.Dim(0), features]);   // [N, C H W]
        input.Data.CopyTo(_output.Data);
        if (_inputShape is null || !input.Shape.SequenceEqual(_inputShape))
        {
            _inputShape = input.Shape.ToArray();
        }
        return _output;
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        int[] inputShape = _inputShape ?? throw new InvalidOperationException("Flatten: Backward called before Forward.");
        RequireGradientShape(outputGradient, _output, "Flatten");
        if (!ComputeInputGradient)
        {
            return null;
        }
        _inputGradient.Resize(inputShape);          // [N, C, H, W]
        outputGradient.Data.CopyTo(_inputGradient.Data);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override string ToString() => "Flatten()";
}
