using System.Numerics.Tensors;

namespace Engine.Kernels;

/// <summary>
/// Average pooling without padding, as PyTorch's avg_pool2d with padding 0 and floor mode:
/// y[c, oh, ow] = (1 / (kh kw)) sum over the window of x[c, oh sh + i, ow sw + j].
/// The fast variants first add the kh input rows of a window row with <see cref="TensorPrimitives.Add(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>,
/// then sum kw neighbours of that row sum; the scalar twins follow the definition window by window.
/// </summary>
public static class AvgPoolF32
{
    private const int StackRow = 1024;

    /// <summary>y[C, OH, OW] = window means of x[C, H, W]: sum the window's rows first, vectorised, then its columns.</summary>
    public static void Forward(ReadOnlySpan<float> x, in ConvGeometry g, Span<float> y)
    {
        CheckSizes(x.Length, y.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        float scale = 1f / (g.KernelHeight * g.KernelWidth);
        Span<float> rowSum = g.Width <= StackRow ? stackalloc float[g.Width] : new float[g.Width];
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<float> plane = x.Slice(c * g.Height * g.Width, g.Height * g.Width);
            Span<float> outPlane = y.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                int top = oh * g.StrideHeight;
                plane.Slice(top * g.Width, g.Width).CopyTo(rowSum);
                for (int i = 1; i < g.KernelHeight; i++)
                {
                    TensorPrimitives.Add(rowSum, plane.Slice((top + i) * g.Width, g.Width), rowSum);
                }
                for (int ow = 0; ow < outW; ow++)
                {
                    outPlane[oh * outW + ow] = TensorPrimitives.Sum(rowSum.Slice(ow * g.StrideWidth, g.KernelWidth)) * scale;
                }
            }
        }
    }

    /// <summary>
    /// dx[c, h, w] += dy[c, oh, ow] / (kh kw) for every window containing (h, w) (accumulates; clear first): one row of
    /// shares per output row, added to each of the window's kh input rows, vectorised.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, in ConvGeometry g, Span<float> dx)
    {
        CheckSizes(dx.Length, dy.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        float scale = 1f / (g.KernelHeight * g.KernelWidth);
        int span = (outW - 1) * g.StrideWidth + g.KernelWidth;   // input columns any window touches
        Span<float> shares = span <= StackRow ? stackalloc float[span] : new float[span];
        for (int c = 0; c < g.Channels; c++)
        {
            Span<float> plane = dx.Slice(c * g.Height * g.Width, g.Height * g.Width);
            ReadOnlySpan<float> outPlane = dy.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                shares.Clear();
                for (int ow = 0; ow < outW; ow++)
                {
                    Span<float> window = shares.Slice(ow * g.StrideWidth, g.KernelWidth);
                    TensorPrimitives.Add(window, outPlane[oh * outW + ow] * scale, window);
                }
                for (int i = 0; i < g.KernelHeight; i++)
                {
                    Span<float> row = plane.Slice((oh * g.StrideHeight + i) * g.Width, span);
                    TensorPrimitives.Add(row, shares, row);
                }
            }
        }
    }

    /// <summary>Reference forward: the definition, window by window.</summary>
    public static void ForwardScalar(ReadOnlySpan<float> x, in ConvGeometry g, Span<float> y)
    {
        CheckSizes(x.Length, y.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        float scale = 1f / (g.KernelHeight * g.KernelWidth);
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<float> plane = x.Slice(c * g.Height * g.Width, g.Height * g.Width);
            Span<float> outPlane = y.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++)
                {
                    float sum = 0;
                    for (int i = 0; i < g.KernelHeight; i++)
                    {
                        ReadOnlySpan<float> row = plane.Slice((oh * g.StrideHeight + i) * g.Width + ow * g.StrideWidth, g.KernelWidth);
                        foreach (float v in row)
                        {
                            sum += v;
                        }
                    }
                    outPlane[oh * outW + ow] = sum * scale;
                }
            }
        }
    }

    /// <summary>Reference backward: the definition, window by window (accumulates).</summary>
    public static void BackwardScalar(ReadOnlySpan<float> dy, in ConvGeometry g, Span<float> dx)
    {
        CheckSizes(dx.Length, dy.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        float scale = 1f / (g.KernelHeight * g.KernelWidth);
        for (int c = 0; c < g.Channels; c++)
        {
            Span<float> plane = dx.Slice(c * g.Height * g.Width, g.Height * g.Width);
            ReadOnlySpan<float> outPlane = dy.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                for (int ow = 0; ow < outW; ow++)
                {
                    float share = outPlane[oh * outW + ow] * scale;
                    for (int i = 0; i < g.KernelHeight; i++)
                    {
                        Span<float> row = plane.Slice((oh * g.StrideHeight + i) * g.Width + ow * g.StrideWidth, g.KernelWidth);
                        for (int j = 0; j < row.Length; j++)
                        {
                            row[j] += share;
                        }
                    }
                }
            }
        }
    }

    private static void CheckSizes(int inputLength, int outputLength, in ConvGeometry g)
    {
        if (g.PadHeight != 0 || g.PadWidth != 0)
        {
            throw new ArgumentException("average pooling: padding is not supported.");
        }
        if (inputLength < g.InputSize || outputLength < g.Channels * g.OutHeight * g.OutWidth)
        {
            throw new ArgumentException(
                $"average pooling: spans of {inputLength} and {outputLength} elements are too small for {g}.");
        }
    }
}
