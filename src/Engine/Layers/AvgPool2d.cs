using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// 2-D average pooling over [N, C, H, W], PyTorch's AvgPool2d(kernel_size, stride) with no padding:
/// y[n, c, oh, ow] = mean of x[n, c, oh s + i, ow s + j] over 0 &lt;= i, j &lt; k; backward spreads dy / k^2 over each window.
/// </summary>
public sealed class AvgPool2d : Layer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private FloatTensor? _input;

    /// <summary>Pooling with a square window of <paramref name="kernelSize"/> and the given stride (default: the kernel size).</summary>
    public AvgPool2d(int kernelSize, int? stride = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kernelSize);
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Stride, nameof(stride));
    }

    /// <summary>The side of the square window.</summary>
    public int KernelSize { get; }

    /// <summary>The step between windows.</summary>
    public int Stride { get; }

    private ConvGeometry Geometry(ReadOnlySpan<int> inputShape)
    {
        if (inputShape.Length != 4)
        {
            throw new ArgumentException($"{this}: expected an input [N, C, H, W], got {FloatTensor.Format(inputShape)}.");
        }
        var g = new ConvGeometry(inputShape[1], inputShape[2], inputShape[3], KernelSize, KernelSize, Stride, Stride, 0, 0);
        g.Validate(Description);
        return g;
    }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        ConvGeometry g = Geometry(inputShape);
        return [inputShape[0], g.Channels, g.OutHeight, g.OutWidth];
    }

    /// <inheritdoc/>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace)
    {
        if (sampleShape.Length != 3)
        {
            throw new ArgumentException($"{Description}: expected a sample [C, H, W], got {FloatTensor.Format(sampleShape)}.");
        }
        var g = new ConvGeometry(sampleShape[0], sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, 0, 0);
        g.Validate(Description);
        int inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        for (int n = 0; n < samples; n++)
        {
            AvgPoolF32.Forward(input.Slice(n * inSize, inSize), g, output.Slice(n * outSize, outSize));
        }
    }

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        _output.Resize([batch, g.Channels, g.OutHeight, g.OutWidth]);  // y: [N, C, OH, OW]
        WorkPartition.Run(Threads, batch, 1, new PoolWork(g, input, _output, inSize, outSize, backward: false));
        _input = input;
        return _output;
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        FloatTensor input = RequireForward(_input, Description);
        RequireGradientShape(outputGradient, _output, Description);
        if (!ComputeInputGradient)
        {
            return null;
        }
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        _inputGradient.Resize(input.Shape);         // dx: [N, C, H, W]
        WorkPartition.Run(Threads, batch, 1, new PoolWork(g, outputGradient, _inputGradient, inSize, outSize, backward: true));
        return _inputGradient;
    }

    /// <summary>Whether <paramref name="tensor"/> is the input of the last <see cref="Forward"/> (the ReLU output a fused backward masks with).</summary>
    internal bool LastInputIs(FloatTensor tensor) => ReferenceEquals(_input, tensor);

    /// <summary>
    /// The backward pass of this pool and of the ReLU whose output it pooled, in one pass
    /// (<see cref="AvgPoolF32.BackwardThroughRelu"/>): writes dLoss/d(ReLU input) into <paramref name="target"/>.
    /// </summary>
    internal void BackwardThroughRelu(FloatTensor outputGradient, FloatTensor reluOutput, FloatTensor target)
    {
        FloatTensor input = RequireForward(_input, Description);
        RequireGradientShape(outputGradient, _output, Description);
        if (!ReferenceEquals(input, reluOutput))
        {
            throw new InvalidOperationException($"{Description}: the fused backward needs the ReLU output this pool read.");
        }
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        target.Resize(input.Shape);                 // d(ReLU input): [N, C, H, W]
        WorkPartition.Run(Threads, batch, 1, new PoolWork(g, outputGradient, target, inSize, outSize, backward: true, reluOutput));
    }

    // Each partition owns whole samples of the tensor it writes: y[n] forward, dx[n] backward (masked by the ReLU
    // output when one is given: the fused backward).
    private readonly struct PoolWork(ConvGeometry g, FloatTensor source, FloatTensor target, int inSize, int outSize, bool backward,
        FloatTensor? reluOutput = null) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                if (backward && reluOutput is not null)
                {
                    AvgPoolF32.BackwardThroughRelu(source.Data.Slice(n * outSize, outSize), g, reluOutput.Data.Slice(n * inSize, inSize),
                        target.Data.Slice(n * inSize, inSize));
                }
                else if (backward)
                {
                    Span<float> dx = target.Data.Slice(n * inSize, inSize);
                    dx.Clear();
                    AvgPoolF32.Backward(source.Data.Slice(n * outSize, outSize), g, dx);
                }
                else
                {
                    AvgPoolF32.Forward(source.Data.Slice(n * inSize, inSize), g, target.Data.Slice(n * outSize, outSize));
                }
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"AvgPool2d(kernel_size={KernelSize}, stride={Stride})";
}
