using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>Rectified linear unit, element-wise: y = max(x, 0); dx = dy where y &gt; 0.</summary>
public sealed class ReLU : Layer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private bool _hasForward;

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape) => inputShape.ToArray();

    /// <inheritdoc/>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace) => ReluF32.Forward(input, output);

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        _output.Resize(input.Shape);                // y: same shape as x
        WorkPartition.Run(Threads, input.Length, Chunk, new ReluWork(input, _output, null));
        _hasForward = true;
        return _output;
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
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
        WorkPartition.Run(Threads, _output.Length, Chunk, new ReluWork(_output, _inputGradient, outputGradient));
        return _inputGradient;
    }

    /// <summary>
    /// The backward pass of this ReLU and of the average pool that read its output, in one pass over the gradient
    /// (<see cref="AvgPool2d.BackwardThroughRelu"/>): what <c>Backward(pool.Backward(poolOutputGradient))</c> returns,
    /// bit for bit, without writing the pool's input gradient and reading it again. <see cref="Sequential"/> uses it
    /// where a ReLU is followed by an AvgPool2d.
    /// </summary>
    internal FloatTensor BackwardThroughPool(AvgPool2d pool, FloatTensor poolOutputGradient)
    {
        if (!_hasForward)
        {
            throw new InvalidOperationException("ReLU: Backward called before Forward.");
        }
        pool.BackwardThroughRelu(poolOutputGradient, _output, _inputGradient);
        return _inputGradient;
    }

    /// <summary>Whether <paramref name="pool"/>'s last input was this layer's output, so their backward passes can be fused.</summary>
    internal bool FeedsInto(AvgPool2d pool) => _hasForward && pool.LastInputIs(_output);

    // Elements per partition step: below this a thread hand-off costs more than the memory traffic it splits.
    private const int Chunk = 1 << 14;

    // Forward (gradient null): target = max(source, 0). Backward: target = gradient where source (the output) > 0.
    private readonly struct ReluWork(FloatTensor source, FloatTensor target, FloatTensor? gradient) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            if (gradient is null)
            {
                ReluF32.Forward(source.Data[start..end], target.Data[start..end]);
            }
            else
            {
                ReluF32.Backward(source.Data[start..end], gradient.Data[start..end], target.Data[start..end]);
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => "ReLU()";
}
