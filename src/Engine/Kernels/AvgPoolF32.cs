namespace Engine.Kernels;

/// <summary>
/// Average pooling without padding, as PyTorch's avg_pool2d with padding 0 and floor mode:
/// y[c, oh, ow] = (1 / (kh kw)) sum over the window of x[c, oh sh + i, ow sw + j].
/// It reads each input once and is memory-bound (under 1% of a training step here), so it has a single, plain
/// implementation that serves as its own reference.
/// </summary>
public static class AvgPoolF32
{
    /// <summary>y[C, OH, OW] = window means of x[C, H, W].</summary>
    public static void Forward(ReadOnlySpan<float> x, in ConvGeometry g, Span<float> y)
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

    /// <summary>dx[c, h, w] += dy[c, oh, ow] / (kh kw) for every window containing (h, w) (accumulates; clear first).</summary>
    public static void Backward(ReadOnlySpan<float> dy, in ConvGeometry g, Span<float> dx)
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
