using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// 2-D average pooling over [N, C, H, W], PyTorch's AvgPool2d(kernel_size, stride) with no padding:
/// y[n, c, oh, ow] = mean of x[n, c, oh s + i, ow s + j] over 0 &lt;= i, j &lt; k; backward spreads dy / k^2 over each window.
/// </summary>
public sealed class AvgPool2d : Layer
{
    private readonly Tensor _output = new(0);
    private readonly Tensor _inputGradient = new(0);
    private Tensor? _input;

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
            throw new ArgumentException($"{this}: expected an input [N, C, H, W], got {Tensor.Format(inputShape)}.");
        }
        var g = new ConvGeometry(inputShape[1], inputShape[2], inputShape[3], KernelSize, KernelSize, Stride, Stride, 0, 0);
        g.Validate(ToString());
        return g;
    }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        ConvGeometry g = Geometry(inputShape);
        return [inputShape[0], g.Channels, g.OutHeight, g.OutWidth];
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        _output.Resize([batch, g.Channels, g.OutHeight, g.OutWidth]);  // y: [N, C, OH, OW]
        for (int n = 0; n < batch; n++)
        {
            AvgPoolF32.Forward(input.Data.Slice(n * inSize, inSize), g, _output.Data.Slice(n * outSize, outSize));
        }
        _input = input;
        return _output;
    }

    /// <inheritdoc/>
    public override Tensor? Backward(Tensor outputGradient)
    {
        Tensor input = RequireForward(_input, ToString());
        RequireGradientShape(outputGradient, _output, ToString());
        if (!ComputeInputGradient)
        {
            return null;
        }
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), inSize = g.InputSize, outSize = g.Channels * g.OutHeight * g.OutWidth;
        _inputGradient.Resize(input.Shape);         // dx: [N, C, H, W]
        _inputGradient.Clear();
        for (int n = 0; n < batch; n++)
        {
            AvgPoolF32.Backward(outputGradient.Data.Slice(n * outSize, outSize), g, _inputGradient.Data.Slice(n * inSize, inSize));
        }
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override string ToString() => $"AvgPool2d(kernel_size={KernelSize}, stride={Stride})";
}
