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

    /// <summary>
    /// Throws unless the window fits: positive sizes, non-negative padding, at least one output pixel, and every size
    /// derived from the geometry (padded image, im2col matrix, output) at most int.MaxValue elements.
    /// </summary>
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
        // In long arithmetic: H + 2 pad and the products below can pass int.MaxValue, and must be refused, not wrapped.
        long paddedHeight = Height + 2L * PadHeight, paddedWidth = Width + 2L * PadWidth;
        if (paddedHeight < KernelHeight || paddedWidth < KernelWidth)
        {
            throw new ArgumentException(
                $"{what}: a {KernelHeight}x{KernelWidth} window does not fit a {Height}x{Width} input with padding {PadHeight}x{PadWidth}.");
        }
        long outHeight = (paddedHeight - KernelHeight) / StrideHeight + 1, outWidth = (paddedWidth - KernelWidth) / StrideWidth + 1;
        long columnRows = (long)Channels * KernelHeight * KernelWidth;
        if (paddedHeight > int.MaxValue || paddedWidth > int.MaxValue
            || (long)Channels * Height * Width > int.MaxValue
            || Channels * paddedHeight > int.MaxValue || Channels * paddedHeight * paddedWidth > int.MaxValue
            || columnRows > int.MaxValue || outHeight * outWidth > int.MaxValue || columnRows * outHeight * outWidth > int.MaxValue)
        {
            throw new ArgumentException(
                $"{what}: channels {Channels}, input {Height}x{Width}, kernel {KernelHeight}x{KernelWidth}, padding {PadHeight}x{PadWidth} "
                + $"and stride {StrideHeight}x{StrideWidth} give buffers of more than {int.MaxValue} elements.");
        }
    }
}
