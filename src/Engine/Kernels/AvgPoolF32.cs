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

    /// <summary>
    /// The backward pass of avg-pool fused with the backward pass of the ReLU before it, in one pass over dx:
    /// dx[c, h, w] = [y[c, h, w] &gt; 0] sum over the windows containing (h, w) of dy[c, oh, ow] / (kh kw), with
    /// <paramref name="reluOutput"/> y the ReLU's output (the pool's input). Overwrites dx. Each plane is built as
    /// <see cref="Backward"/> builds it and masked as <see cref="ReluF32.Backward"/> masks it, so the result is bit for bit
    /// the two passes' result; for non-overlapping windows (stride = kernel, the seed network's pool) each input row is
    /// written once, masked shares of its window row, with no clearing or adding.
    /// </summary>
    public static void BackwardThroughRelu(ReadOnlySpan<float> dy, in ConvGeometry g, ReadOnlySpan<float> reluOutput, Span<float> dx)
    {
        CheckSizes(dx.Length, dy.Length, g);
        if (reluOutput.Length < g.InputSize)
        {
            throw new ArgumentException($"avg-pool backward through ReLU: y has {reluOutput.Length} elements, {g.InputSize} needed for {g}.");
        }
        int outH = g.OutHeight, outW = g.OutWidth, planeSize = g.Height * g.Width;
        if (g.StrideHeight != g.KernelHeight || g.StrideWidth != g.KernelWidth)
        {
            // Overlapping or gapped windows: the unfused plane, then the mask while the plane is still in L1.
            for (int c = 0; c < g.Channels; c++)
            {
                var single = g with { Channels = 1 };
                Span<float> plane = dx.Slice(c * planeSize, planeSize);
                plane.Clear();
                Backward(dy.Slice(c * outH * outW, outH * outW), single, plane);
                ReluF32.Backward(reluOutput.Slice(c * planeSize, planeSize), plane, plane);
            }
            return;
        }
        float scale = 1f / (g.KernelHeight * g.KernelWidth);
        int span = outW * g.KernelWidth;   // input columns the windows cover; the rest (floor mode) get no gradient
        Span<float> shares = span <= StackRow ? stackalloc float[span] : new float[span];
        for (int c = 0; c < g.Channels; c++)
        {
            Span<float> plane = dx.Slice(c * planeSize, planeSize);
            ReadOnlySpan<float> mask = reluOutput.Slice(c * planeSize, planeSize);
            ReadOnlySpan<float> outPlane = dy.Slice(c * outH * outW, outH * outW);
            for (int oh = 0; oh < outH; oh++)
            {
                // As Backward: shares start at +0 and receive dy / (kh kw), so -0 becomes +0 exactly as there.
                shares.Clear();
                for (int ow = 0; ow < outW; ow++)
                {
                    Span<float> window = shares.Slice(ow * g.KernelWidth, g.KernelWidth);
                    TensorPrimitives.Add(window, outPlane[oh * outW + ow] * scale, window);
                }
                for (int i = 0; i < g.KernelHeight; i++)
                {
                    int row = (oh * g.KernelHeight + i) * g.Width;
                    ReluF32.Backward(mask.Slice(row, span), shares, plane.Slice(row, span));
                    plane.Slice(row + span, g.Width - span).Clear();
                }
            }
            plane[(outH * g.KernelHeight * g.Width)..].Clear();
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
