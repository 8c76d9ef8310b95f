using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Builds the right operand of an int8 convolution, im2col(image) as a k x n matrix (k = C kh kw taps, n = OH OW
/// pixels), directly in <see cref="GemmS8U8"/>'s packed layout. Taps outside the image read the activation zero point,
/// the code of real 0 (gemmlowp), so padding contributes nothing once the zero-point correction is applied.
/// <para>
/// Direct path (stride 1, OW a multiple of 16): the image is copied once into a zero-point-bordered buffer
/// [C, H + 2ph, W + 2pw]; then a panel of 16 pixels lies inside one output row, and tap (c, ki, kj) of those pixels
/// is 16 consecutive bytes of the bordered image at a fixed offset, so each depth pair of the panel is two loads and
/// one byte interleave, with no im2col matrix in between. Other geometries build the im2col matrix and pack it.
/// </para>
/// </summary>
public static unsafe class ConvPackQ8
{
    /// <summary>Whether <see cref="Pack"/> takes the direct path for this geometry.</summary>
    public static bool CanPackDirect(in ConvGeometry g) =>
        g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth % GemmS8U8.PanelWidth == 0;

    /// <summary>Bytes of scratch <see cref="Pack"/> needs: the bordered image (direct) or the im2col matrix.</summary>
    public static int ScratchLength(in ConvGeometry g) => CanPackDirect(g)
        ? g.Channels * (g.Height + 2 * g.PadHeight) * (g.Width + 2 * g.PadWidth)
        : g.ColumnRows * g.ColumnCols;

    /// <summary>Bytes of the packed operand: <see cref="GemmS8U8.PackedActivationsLength"/> of k = C kh kw, n = OH OW.</summary>
    public static int PackedLength(in ConvGeometry g, KernelVariant variant) =>
        GemmS8U8.PackedActivationsLength(g.ColumnRows, g.ColumnCols, variant);

    /// <summary>packed = pack(im2col(image[C, H, W]) padded with <paramref name="zeroPoint"/>).</summary>
    public static void Pack(ReadOnlySpan<byte> image, in ConvGeometry g, byte zeroPoint, Span<byte> scratch, Span<byte> packed,
        KernelVariant variant)
    {
        g.Validate("int8 convolution");
        if (image.Length < g.InputSize || scratch.Length < ScratchLength(g) || packed.Length < PackedLength(g, variant))
        {
            throw new ArgumentException(
                $"int8 convolution packing: image {image.Length}, scratch {scratch.Length}, packed {packed.Length} do not fit {g}.");
        }
        if (CanPackDirect(g))
        {
            PackDirect(image, g, zeroPoint, scratch, packed, variant);
        }
        else
        {
            PackViaIm2Col(image, g, zeroPoint, scratch, packed, variant);
        }
    }

    /// <summary>The reference path, and the path for strides and widths the direct one does not take.</summary>
    public static void PackViaIm2Col(ReadOnlySpan<byte> image, in ConvGeometry g, byte zeroPoint, Span<byte> col, Span<byte> packed,
        KernelVariant variant)
    {
        int k = g.ColumnRows, n = g.ColumnCols;
        Im2ColF32.Im2Col(image, g, col[..(k * n)], zeroPoint);
        GemmS8U8.PackActivations(k, n, col, n, packed, variant);
    }

    private static void PackDirect(ReadOnlySpan<byte> image, in ConvGeometry g, byte zeroPoint, Span<byte> bordered, Span<byte> packed,
        KernelVariant variant)
    {
        Border(image, g, zeroPoint, bordered);
        PackBorderedRows(bordered, g, 0, g.OutHeight, packed, variant);
    }

    /// <summary>
    /// bordered[C, H + 2ph, W + 2pw] = the image in the middle, the zero point around it: the first half of the direct
    /// path, done once per image so that row ranges can then be packed separately (<see cref="PackBorderedRows"/>).
    /// </summary>
    internal static void Border(ReadOnlySpan<byte> image, in ConvGeometry g, byte zeroPoint, Span<byte> bordered)
    {
        int paddedH = g.Height + 2 * g.PadHeight, paddedW = g.Width + 2 * g.PadWidth;
        int plane = paddedH * paddedW;
        if (image.Length < g.InputSize || bordered.Length < g.Channels * plane)
        {
            throw new ArgumentException($"int8 convolution packing: image {image.Length} or bordered buffer {bordered.Length} does not fit {g}.");
        }
        // Only the border is filled, and each image row is one copy: a whole-buffer fill and a span copy per row cost as
        // much as packing the image (conv2: 32 x 32 rows of 32 bytes).
        fixed (byte* source = image, destination = bordered)
        {
            for (int c = 0; c < g.Channels; c++)
            {
                byte* dst = destination + (long)c * plane;
                byte* src = source + (long)c * g.Height * g.Width;
                new Span<byte>(dst, g.PadHeight * paddedW).Fill(zeroPoint);
                new Span<byte>(dst + (g.PadHeight + g.Height) * paddedW, g.PadHeight * paddedW).Fill(zeroPoint);
                for (int h = 0; h < g.Height; h++)
                {
                    byte* row = dst + (h + g.PadHeight) * paddedW;
                    for (int j = 0; j < g.PadWidth; j++)
                    {
                        row[j] = zeroPoint;
                        row[g.PadWidth + g.Width + j] = zeroPoint;
                    }
                    Buffer.MemoryCopy(src + h * g.Width, row + g.PadWidth, g.Width, g.Width);
                }
            }
        }
    }

    /// <summary>
    /// The panels of output rows [<paramref name="rowStart"/>, <paramref name="rowEnd"/>) from a bordered image
    /// (<see cref="Border"/>), written from the start of <paramref name="packed"/>: exactly the bytes
    /// <see cref="Pack"/> writes for those rows (each row is OW / 16 whole panels), so a convolution can be computed a
    /// band of rows at a time, with the band's packed operand in cache. Direct geometries only (<see cref="CanPackDirect"/>).
    /// With <paramref name="pairPanels"/> (the default) and AVX2, two adjacent panels are interleaved per 32-byte load
    /// (<see cref="GemmS8U8.InterleaveQuadsTwoPanels"/>): the same bytes, half the loads and stores (false: panel by
    /// panel, the form tests and benchmarks compare it with).
    /// </summary>
    internal static void PackBorderedRows(ReadOnlySpan<byte> bordered, in ConvGeometry g, int rowStart, int rowEnd, Span<byte> packed,
        KernelVariant variant, bool pairPanels = true)
    {
        if (!CanPackDirect(g) || rowStart < 0 || rowEnd > g.OutHeight || rowStart > rowEnd
            || bordered.Length < ScratchLength(g)
            || packed.Length < (long)(rowEnd - rowStart) * (g.OutWidth / GemmS8U8.PanelWidth) * GemmS8U8.PanelLength(g.ColumnRows, variant))
        {
            throw new ArgumentException($"int8 convolution packing: rows [{rowStart}, {rowEnd}) of {g} do not fit the buffers or the direct path.");
        }
        int paddedH = g.Height + 2 * g.PadHeight, paddedW = g.Width + 2 * g.PadWidth;
        int plane = paddedH * paddedW;
        int k = g.ColumnRows, group = GemmS8U8.GroupSize(variant);
        int outW = g.OutWidth, width = GemmS8U8.PanelWidth;
        // Tap p = (c, ki, kj) in im2col row order reads the bordered image at offsets[p] from the pixel's own position
        // (counted up without divisions: this runs once per band of rows, and k divisions cost as much as packing a band).
        Span<int> offsets = k <= 1024 ? stackalloc int[k] : new int[k];
        for (int c = 0, p = 0; c < g.Channels; c++)
        {
            for (int ki = 0; ki < g.KernelHeight; ki++)
            {
                for (int kj = 0; kj < g.KernelWidth; kj++, p++)
                {
                    offsets[p] = c * plane + ki * paddedW + kj;
                }
            }
        }
        fixed (byte* source = bordered, destination = packed)
        fixed (int* offset = offsets)
        {
            byte* dst = destination;
            int full = k / group * group, panelLength = GemmS8U8.PanelLength(k, variant);
            for (int oh = rowStart; oh < rowEnd; oh++)
            {
                int ow0 = 0;
                if (pairPanels && Avx2.IsSupported)
                {
                    // Two panels (32 pixels of the row) per load: the same bytes as panel by panel, half the loads and stores.
                    for (; ow0 + 2 * width <= outW; ow0 += 2 * width, dst += 2 * panelLength)
                    {
                        byte* pixel = source + oh * paddedW + ow0;
                        byte* d = dst;
                        if (group == 2)
                        {
                            for (int p = 0; p < full; p += 2, d += 2 * width)
                            {
                                GemmS8U8.InterleavePairsTwoPanels(pixel + offset[p], pixel + offset[p + 1], d, d + panelLength);
                            }
                        }
                        else
                        {
                            for (int p = 0; p < full; p += 4, d += 4 * width)
                            {
                                GemmS8U8.InterleaveQuadsTwoPanels(pixel + offset[p], pixel + offset[p + 1], pixel + offset[p + 2], pixel + offset[p + 3],
                                    d, d + panelLength);
                            }
                        }
                        if (full < k)
                        {
                            int present = k - full;
                            for (int half = 0; half < 2; half++)
                            {
                                byte* at = pixel + half * width;
                                GemmS8U8.InterleaveGroup(at + offset[full], present > 1 ? at + offset[full + 1] : null,
                                    present > 2 ? at + offset[full + 2] : null, null, d + half * panelLength, group);
                            }
                        }
                    }
                }
                for (; ow0 < outW; ow0 += width)
                {
                    byte* pixel = source + oh * paddedW + ow0;
                    if (group == 2)
                    {
                        for (int p = 0; p < full; p += 2, dst += 2 * width)
                        {
                            GemmS8U8.InterleavePairs(pixel + offset[p], pixel + offset[p + 1], dst);
                        }
                    }
                    else
                    {
                        for (int p = 0; p < full; p += 4, dst += 4 * width)
                        {
                            GemmS8U8.InterleaveQuads(pixel + offset[p], pixel + offset[p + 1], pixel + offset[p + 2], pixel + offset[p + 3], dst);
                        }
                    }
                    if (full < k)
                    {
                        // The last, partial group: taps past k are null, the zeros the packed weights also hold there.
                        int present = k - full;
                        GemmS8U8.InterleaveGroup(pixel + offset[full], present > 1 ? pixel + offset[full + 1] : null,
                            present > 2 ? pixel + offset[full + 2] : null, null, dst, group);
                        dst += group * width;
                    }
                }
            }
        }
    }
}
