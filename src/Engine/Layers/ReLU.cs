using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>Rectified linear unit, element-wise: y = max(x, 0); dx = dy where y &gt; 0.</summary>
public sealed class ReLU : Layer
{
    private readonly Tensor _output = new(0);
    private readonly Tensor _inputGradient = new(0);
    private bool _hasForward;

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape) => inputShape.ToArray();

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        _output.Resize(input.Shape);                // y: same shape as x
        ReluF32.Forward(input.Data, _output.Data);
        _hasForward = true;
        return _output;
    }

    /// <inheritdoc/>
    public override Tensor? Backward(Tensor outputGradient)
    {
        if (!_hasForward)
        {
            throw new InvalidOperationException("ReLU: Backward called before Forward.");
        }
        RequireGradientShape(outputGradient, _output, "ReLU");
        if (!ComputeInputGradient)
        {
            return null;
        }
        _inputGradient.Resize(_output.Shape);       // dx: same shape as x
        ReluF32.Backward(_output.Data, outputGradient.Data, _inputGradient.Data);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override string ToString() => "ReLU()";
}
