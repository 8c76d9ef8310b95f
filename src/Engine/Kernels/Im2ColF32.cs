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
    public static void Im2Col(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> col) => Im2Col(image, g, col, 0f);

    /// <summary>
    /// im2col written straight into the column-panel layout of <see cref="GemmF32.PackPanels"/>: element (r, j) of the
    /// col matrix at panels[((j / 16) (C kh kw) + r) 16 + j % 16]. Panels are written one after another (sequential
    /// stores; the image is small enough to stay in cache while it is read many times). A panel whose 16 pixels lie in
    /// one output row of a stride-1 convolution is a clipped 16-float copy per tap; other panels go pixel by pixel.
    /// </summary>
    public static void Im2ColPanels(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> panels) =>
        Im2ColPanels(image, g, 0, g.ColumnCols, panels);

    /// <summary>
    /// The panels of output pixels [<paramref name="firstPixel"/>, <paramref name="firstPixel"/> + <paramref name="pixelCount"/>)
    /// only (firstPixel a multiple of 16), laid out as if those were the whole matrix: a convolution builds its columns
    /// a cache-sized chunk at a time and multiplies each chunk while it is still in L2.
    /// </summary>
    public static void Im2ColPanels(ReadOnlySpan<float> image, in ConvGeometry g, int firstPixel, int pixelCount, Span<float> panels)
    {
        int rows = g.ColumnRows, width = GemmF32.PanelWidth, outW = g.OutWidth;
        if (image.Length < g.InputSize || panels.Length < GemmF32.PanelsLength(rows, pixelCount)
            || firstPixel % width != 0 || firstPixel < 0 || firstPixel + pixelCount > g.ColumnCols)
        {
            throw new ArgumentException($"im2col panels: spans or pixel range [{firstPixel}, {firstPixel + pixelCount}) do not fit {g}.");
        }
        int pixels = firstPixel + pixelCount;
        for (int j0 = firstPixel; j0 < pixels; j0 += width)
        {
            int cols = Math.Min(width, pixels - j0);
            Span<float> panel = panels.Slice((j0 - firstPixel) * rows, rows * width);
            int oh = j0 / outW, ow0 = j0 % outW;
            bool oneRow = g.StrideWidth == 1 && ow0 + cols <= outW;
            int r = 0;
            for (int c = 0; c < g.Channels; c++)
            {
                ReadOnlySpan<float> plane = image.Slice(c * g.Height * g.Width, g.Height * g.Width);
                for (int ki = 0; ki < g.KernelHeight; ki++)
                {
                    for (int kj = 0; kj < g.KernelWidth; kj++, r++)
                    {
                        Span<float> dst = panel.Slice(r * width, width);
                        if (oneRow)
                        {
                            int ih = oh * g.StrideHeight - g.PadHeight + ki;
                            if ((uint)ih >= (uint)g.Height)
                            {
                                dst.Clear();
                                continue;
                            }
                            // Pixels ow0 .. ow0 + cols - 1 read input columns iw = ow - pad + kj; clip to [0, W).
                            int iwFirst = ow0 - g.PadWidth + kj;
                            int lo = Math.Clamp(-iwFirst, 0, cols), hi = Math.Clamp(g.Width - iwFirst, lo, cols);
                            dst[..lo].Clear();
                            plane.Slice(ih * g.Width + iwFirst + lo, hi - lo).CopyTo(dst[lo..hi]);
                            dst[hi..].Clear();
                        }
                        else
                        {
                            for (int t = 0; t < width; t++)
                            {
                                int j = j0 + t;
                                float value = 0f;
                                if (t < cols)
                                {
                                    int ih = j / outW * g.StrideHeight - g.PadHeight + ki;
                                    int iw = j % outW * g.StrideWidth - g.PadWidth + kj;
                                    if ((uint)ih < (uint)g.Height && (uint)iw < (uint)g.Width)
                                    {
                                        value = plane[ih * g.Width + iw];
                                    }
                                }
                                dst[t] = value;
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// im2col of any element type, with <paramref name="padding"/> where a tap falls outside the image: for the int8 path
    /// the padding is the activation zero point, the code of real 0 (gemmlowp; padding with code 0 would mean a real
    /// value of -scale x zero_point).
    /// </summary>
    public static void Im2Col<T>(ReadOnlySpan<T> image, in ConvGeometry g, Span<T> col, T padding)
    {
        CheckSizes(image.Length, col.Length, g);
        int pixels = g.ColumnCols;
        var single = g with { Channels = 1 };
        int row = 0;
        for (int c = 0; c < g.Channels; c++)
        {
            ReadOnlySpan<T> plane = image.Slice(c * g.Height * g.Width, g.Height * g.Width);
            for (int ki = 0; ki < g.KernelHeight; ki++)
            {
                for (int kj = 0; kj < g.KernelWidth; kj++, row++)
                {
                    FillRow(plane, single, ki, kj, col.Slice(row * pixels, pixels), padding);
                }
            }
        }
    }

    // One row of the col matrix: tap (ki, kj) of a single-channel plane for every output pixel.
    private static void FillRow<T>(ReadOnlySpan<T> plane, in ConvGeometry g, int ki, int kj, Span<T> dst, T padding)
    {
        int outH = g.OutHeight, outW = g.OutWidth;
        int owStart = Math.Min(CeilDiv(Math.Max(g.PadWidth - kj, 0), g.StrideWidth), outW);
        int owEnd = Math.Max(Math.Min(outW, CeilDiv(g.Width + g.PadWidth - kj, g.StrideWidth)), owStart);
        for (int oh = 0; oh < outH; oh++)
        {
            Span<T> dstRow = dst.Slice(oh * outW, outW);
            int ih = oh * g.StrideHeight - g.PadHeight + ki;
            if ((uint)ih >= (uint)g.Height)
            {
                dstRow.Fill(padding);
                continue;
            }
            dstRow[..owStart].Fill(padding);
            dstRow[owEnd..].Fill(padding);
            ReadOnlySpan<T> srcRow = plane.Slice(ih * g.Width, g.Width);
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
