namespace Engine.Kernels;

/// <summary>
/// The sizes of a 2-D convolution or pooling window over one image [channels, height, width]:
/// out = floor((in + 2 pad - kernel) / stride) + 1 per spatial axis, as in PyTorch.
/// </summary>
public readonly record struct ConvGeometry(
    int Channels, int Height, int Width,
    int KernelHeight, int KernelWidth,
    int StrideHeight, int StrideWidth,
    int PadHeight, int PadWidth)
{
    /// <summary>Output rows: floor((H + 2 pad - kh) / stride) + 1.</summary>
    public int OutHeight => (Height + 2 * PadHeight - KernelHeight) / StrideHeight + 1;

    /// <summary>Output columns: floor((W + 2 pad - kw) / stride) + 1.</summary>
    public int OutWidth => (Width + 2 * PadWidth - KernelWidth) / StrideWidth + 1;

    /// <summary>Rows of the im2col matrix: channels x kh x kw (the GEMM's depth).</summary>
    public int ColumnRows => Channels * KernelHeight * KernelWidth;

    /// <summary>Columns of the im2col matrix: one per output pixel.</summary>
    public int ColumnCols => OutHeight * OutWidth;

    /// <summary>Elements of one input image.</summary>
    public int InputSize => Channels * Height * Width;

    /// <summary>Throws unless the window fits: positive sizes, non-negative padding, at least one output pixel.</summary>
    public void Validate(string what)
    {
        if (Channels <= 0 || Height <= 0 || Width <= 0 || KernelHeight <= 0 || KernelWidth <= 0
            || StrideHeight <= 0 || StrideWidth <= 0 || PadHeight < 0 || PadWidth < 0)
        {
            // Not {this}: the record's ToString evaluates OutHeight and OutWidth, which divide by the stride.
            throw new ArgumentException(
                $"{what}: invalid geometry: channels {Channels}, input {Height}x{Width}, kernel {KernelHeight}x{KernelWidth}, "
                + $"stride {StrideHeight}x{StrideWidth}, padding {PadHeight}x{PadWidth} (sizes and strides must be > 0, padding >= 0).");
        }
        if (Height + 2 * PadHeight < KernelHeight || Width + 2 * PadWidth < KernelWidth)
        {
            throw new ArgumentException(
                $"{what}: a {KernelHeight}x{KernelWidth} window does not fit a {Height}x{Width} input with padding {PadHeight}x{PadWidth}.");
        }
    }
}
