using System.Numerics.Tensors;

namespace Engine.Kernels;

/// <summary>
/// Lowers a convolution to a matrix multiply (Chellapilla et al., 2006): im2col copies every receptive field of
/// one image into a column, col[(c kh + i) kw + j, oh OW + ow] = x[c, oh sh - ph + i, ow sw - pw + j] (0 outside),
/// so that out[Cout, OH OW] = W[Cout, C kh kw] col. Col2im is its adjoint: it scatters-adds columns back.
/// </summary>
public static class Im2ColF32
{
    /// <summary>col[C kh kw, OH OW] from image[C, H, W]; rows of contiguous output pixels are copied as blocks.</summary>
    public static void Im2Col(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> col)
    {
        CheckSizes(image.Length, col.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        int row = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<float> plane = image.Slice(c * g.Height * g.Width, g.Height * g.Width);
            for (int ki = 0; ki < g.KernelHeight; ki++)
            {
                for (int kj = 0; kj < g.KernelWidth; kj++, row++)
                {
                    Span<float> dst = col.Slice(row * outH * outW, outH * outW);
                    // Output columns whose input column lands inside the image: iw = ow sw - pw + kj in [0, W).
                    int owStart = Math.Min(CeilDiv(Math.Max(g.PadWidth - kj, 0), g.StrideWidth), outW);
                    int owEnd = Math.Min(outW, CeilDiv(g.Width + g.PadWidth - kj, g.StrideWidth));
                    owEnd = Math.Max(owEnd, owStart);
                    for (int oh = 0; oh < outH; oh++)
                    {
                        Span<float> dstRow = dst.Slice(oh * outW, outW);
                        int ih = oh * g.StrideHeight - g.PadHeight + ki;
                        if ((uint)ih >= (uint)g.Height)
                        {
                            dstRow.Clear();
                            continue;
                        }
                        dstRow[..owStart].Clear();
                        dstRow[owEnd..].Clear();
                        ReadOnlySpan<float> srcRow = plane.Slice(ih * g.Width, g.Width);
                        int iw0 = owStart * g.StrideWidth - g.PadWidth + kj;
                        if (g.StrideWidth == 1)
                        {
                            srcRow.Slice(iw0, owEnd - owStart).CopyTo(dstRow[owStart..owEnd]);
                        }
                        else
                        {
                            for (int ow = owStart, iw = iw0; ow < owEnd; ow++, iw += g.StrideWidth)
                            {
                                dstRow[ow] = srcRow[iw];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>image[C, H, W] += the adjoint of im2col applied to col[C kh kw, OH OW] (accumulates; clear first).</summary>
    public static void Col2Im(ReadOnlySpan<float> col, in ConvGeometry g, Span<float> image)
    {
        CheckSizes(image.Length, col.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        int row = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            Span<float> plane = image.Slice(c * g.Height * g.Width, g.Height * g.Width);
            for (int ki = 0; ki < g.KernelHeight; ki++)
            {
                for (int kj = 0; kj < g.KernelWidth; kj++, row++)
                {
                    ReadOnlySpan<float> src = col.Slice(row * outH * outW, outH * outW);
                    int owStart = Math.Min(CeilDiv(Math.Max(g.PadWidth - kj, 0), g.StrideWidth), outW);
                    int owEnd = Math.Max(Math.Min(outW, CeilDiv(g.Width + g.PadWidth - kj, g.StrideWidth)), owStart);
                    for (int oh = 0; oh < outH; oh++)
                    {
                        int ih = oh * g.StrideHeight - g.PadHeight + ki;
                        if ((uint)ih >= (uint)g.Height)
                        {
                            continue;
                        }
                        ReadOnlySpan<float> srcRow = src.Slice(oh * outW, outW);
                        Span<float> dstRow = plane.Slice(ih * g.Width, g.Width);
                        int iw0 = owStart * g.StrideWidth - g.PadWidth + kj;
                        if (g.StrideWidth == 1)
                        {
                            Span<float> target = dstRow.Slice(iw0, owEnd - owStart);
                            TensorPrimitives.Add(target, srcRow[owStart..owEnd], target);
                        }
                        else
                        {
                            for (int ow = owStart, iw = iw0; ow < owEnd; ow++, iw += g.StrideWidth)
                            {
                                dstRow[iw] += srcRow[ow];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Reference im2col: the definition, element by element.</summary>
    public static void Im2ColScalar(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> col)
    {
        CheckSizes(image.Length, col.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        for (int c = 0; c < g.Channels; c++)
        for (int ki = 0; ki < g.KernelHeight; ki++)
        for (int kj = 0; kj < g.KernelWidth; kj++)
        {
            int row = (c * g.KernelHeight + ki) * g.KernelWidth + kj;
            for (int oh = 0; oh < outH; oh++)
            for (int ow = 0; ow < outW; ow++)
            {
                int ih = oh * g.StrideHeight - g.PadHeight + ki;
                int iw = ow * g.StrideWidth - g.PadWidth + kj;
                bool inside = ih >= 0 && ih < g.Height && iw >= 0 && iw < g.Width;
                col[row * outH * outW + oh * outW + ow] = inside ? image[(c * g.Height + ih) * g.Width + iw] : 0f;
            }
        }
    }

    /// <summary>Reference col2im: the definition, element by element (accumulates).</summary>
    public static void Col2ImScalar(ReadOnlySpan<float> col, in ConvGeometry g, Span<float> image)
    {
        CheckSizes(image.Length, col.Length, g);
        int outH = g.OutHeight, outW = g.OutWidth;
        for (int c = 0; c < g.Channels; c++)
        for (int ki = 0; ki < g.KernelHeight; ki++)
        for (int kj = 0; kj < g.KernelWidth; kj++)
        {
            int row = (c * g.KernelHeight + ki) * g.KernelWidth + kj;
            for (int oh = 0; oh < outH; oh++)
            for (int ow = 0; ow < outW; ow++)
            {
                int ih = oh * g.StrideHeight - g.PadHeight + ki;
                int iw = ow * g.StrideWidth - g.PadWidth + kj;
                if (ih >= 0 && ih < g.Height && iw >= 0 && iw < g.Width)
                {
                    image[(c * g.Height + ih) * g.Width + iw] += col[row * outH * outW + oh * outW + ow];
                }
            }
        }
    }

    private static int CeilDiv(int a, int b) => (a + b - 1) / b;

    private static void CheckSizes(int imageLength, int colLength, in ConvGeometry g)
    {
        if (imageLength < g.InputSize)
        {
            throw new ArgumentException($"im2col: image span has {imageLength} elements, geometry needs {g.InputSize}.");
        }
        if (colLength < g.ColumnRows * g.ColumnCols)
        {
            throw new ArgumentException($"im2col: column span has {colLength} elements, geometry needs {g.ColumnRows * g.ColumnCols}.");
        }
    }
}
