using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// 3 x 3, stride-1 convolution by Winograd's minimal filtering F(4 x 4, 3 x 3) (Lavin and Gray, "Fast Algorithms for
/// Convolutional Neural Networks", CVPR 2016). The output is cut into 4 x 4 tiles; tile t of output channel o is
/// <code>
///   Y[o, t] = A^T ( sum over c of U[o, c] .* V[c, t] ) A       U[o, c] = G g[o, c] G^T     (6 x 6, once per weight set)
///                                                              V[c, t] = B^T d[c, t] B     (6 x 6, d the 6 x 6 input tile)
/// </code>
/// The sum over channels, for each of the 36 positions (xi, nu) of the 6 x 6 transformed tile, is a small matrix product
/// M[xi nu] = U[xi nu] (Cout x Cin) V[xi nu] (Cin x tiles), run on the GEMM micro-kernels of <see cref="GemmF32"/>: 36
/// multiplies per tile and channel pair instead of the direct 144. Tiles are processed in chunks of
/// <see cref="ChunkTiles"/>; every output element is computed by the same operations whichever chunk holds its tile and
/// whichever thread runs the chunk, so results do not depend on the split. docs/float-engine.md explains the method.
/// </summary>
internal static unsafe class WinogradF32
{
    /// <summary>Output tile side m of F(m x m, 3 x 3).</summary>
    public const int OutputTile = 4;

    /// <summary>Input tile side m + 2.</summary>
    public const int InputTile = 6;

    /// <summary>Positions of a transformed tile: (m + 2)^2, one small GEMM each.</summary>
    public const int Positions = InputTile * InputTile;

    /// <summary>Tiles transformed and multiplied together: V and M of a chunk (36 x 32 x (Cin + Cout) floats) stay in L2.</summary>
    public const int ChunkTiles = 32;

    private const int Lanes = 8;   // tiles per Vector256 in the transforms

    /// <summary>The GEMM variants this CPU runs (the transforms are the same Vector256 code in both).</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
        !GemmF32.HasAvx2Fma ? [] : Avx512F.IsSupported ? [KernelVariant.Avx2Fma, KernelVariant.Avx512] : [KernelVariant.Avx2Fma];

    /// <summary>The fastest variant here: the 6 x 32 AVX-512 micro-kernel where the CPU has it.</summary>
    public static KernelVariant Best => Avx512F.IsSupported ? KernelVariant.Avx512 : KernelVariant.Avx2Fma;

    /// <summary>Whether this geometry can run here: AVX2 + FMA, a 3 x 3 kernel, stride 1, padding 0 to 2.</summary>
    public static bool Supports(in ConvGeometry g) =>
        GemmF32.HasAvx2Fma && g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideHeight == 1 && g.StrideWidth == 1
        && g.PadHeight is >= 0 and <= 2 && g.PadWidth is >= 0 and <= 2;

    private static int TilesHigh(in ConvGeometry g) => (g.OutHeight + OutputTile - 1) / OutputTile;

    private static int TilesWide(in ConvGeometry g) => (g.OutWidth + OutputTile - 1) / OutputTile;

    /// <summary>Output tiles of one image: ceil(OH / 4) ceil(OW / 4).</summary>
    public static int TileCount(in ConvGeometry g) => TilesHigh(g) * TilesWide(g);

    /// <summary>Chunks of <see cref="ChunkTiles"/> tiles of one image: the unit of work a thread takes.</summary>
    public static int ChunkCount(in ConvGeometry g) => (TileCount(g) + ChunkTiles - 1) / ChunkTiles;

    /// <summary>
    /// Threads worth splitting one image's chunks over, at most <paramref name="threads"/>: one unless every thread gets
    /// at least 4 chunks. For conv2 (2 chunks per image) batch-1 inference on two threads measured slower split (waking
    /// the second thread costs about as much as a chunk) than on one; docs/float-engine.md.
    /// </summary>
    public static int ThreadsFor(in ConvGeometry g, int threads) => Math.Max(1, Math.Min(threads, ChunkCount(g) / 4));

    // The padded image covers every input tile: 4 tiles + 2 rows, and 4 more columns so that the shifted load of the
    // last 8-tile group (columns 4 tw + 4 .. 4 tw + 35) stays inside the row.
    private static int PaddedHeight(in ConvGeometry g) => TilesHigh(g) * OutputTile + 2;

    private static int PaddedWidth(in ConvGeometry g) => TilesWide(g) * OutputTile + 4;

    /// <summary>Floats of the zero-padded image <see cref="Prepare"/> writes.</summary>
    public static int PaddedLength(in ConvGeometry g) => g.Channels * PaddedHeight(g) * PaddedWidth(g);

    /// <summary>Floats of one chunk's scratch: the transformed inputs V and the products M of <see cref="ChunkTiles"/> tiles.</summary>
    public static int ChunkScratchLength(int inChannels, int outChannels) => Positions * (PositionStride(inChannels) + PositionStride(outChannels));

    // Floats between the matrices of consecutive positions in V or M: a channel count times ChunkTiles plus one cache line,
    // so that the 36 values of one tile, read or written together by the transforms, do not all fall into the same L1
    // set (conv2: 64 x 32 floats = 8 KiB apart without the padding, 36 lines competing for 8 ways).
    internal static int PositionStride(int channels) => channels * ChunkTiles + 16;

    /// <summary>Floats of the scratch <see cref="TransformFilters"/> needs: the 36 unpacked Cout x Cin matrices.</summary>
    public static int FilterScratchLength(int outChannels, int inChannels) => Positions * (outChannels * inChannels + 16);

    /// <summary>Floats of the transformed, packed filters: 36 packed Cout x Cin matrices.</summary>
    public static int TransformedFiltersLength(int outChannels, int inChannels) => Positions * GemmF32.PackedRowsLength(outChannels, inChannels);

    // F(4 x 4, 3 x 3) with interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray 2016, section 4.2).
    internal static readonly double[,] BT =
    {
        { 4, 0, -5, 0, 1, 0 },
        { 0, -4, -4, 1, 1, 0 },
        { 0, 4, -4, -1, 1, 0 },
        { 0, -2, -1, 2, 1, 0 },
        { 0, 2, -1, -2, 1, 0 },
        { 0, 4, 0, -5, 0, 1 },
    };

    internal static readonly double[,] G =
    {
        { 1.0 / 4, 0, 0 },
        { -1.0 / 6, -1.0 / 6, -1.0 / 6 },
        { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
        { 1.0 / 24, 1.0 / 12, 1.0 / 6 },
        { 1.0 / 24, -1.0 / 12, 1.0 / 6 },
        { 0, 0, 1 },
    };

    internal static readonly double[,] AT =
    {
        { 1, 1, 1, 1, 1, 0 },
        { 0, 1, -1, 2, -2, 0 },
        { 0, 1, 1, 4, 4, 0 },
        { 0, 1, -1, 8, -8, 1 },
    };

    /// <summary>
    /// U = G g G^T for every filter, in double and rounded once, packed as 36 matrices [Cout, Cin] for the GEMM
    /// (<paramref name="scratch"/>: <see cref="FilterScratchLength"/> floats).
    /// <paramref name="weights"/> is [filters, channels, 3, 3]. With <paramref name="flipTranspose"/> the result serves the
    /// input gradient of that convolution: the convolution with Cout' = channels, Cin' = filters and
    /// g'[c, o] = rot180(g[o, c]), since dx = conv(dy, rot180(W)^T) for stride 1.
    /// </summary>
    public static void TransformFilters(ReadOnlySpan<float> weights, int filters, int channels, bool flipTranspose, Span<float> transformed,
        Span<float> scratch)
    {
        int cout = flipTranspose ? channels : filters, cin = flipTranspose ? filters : channels;
        int packedLength = GemmF32.PackedRowsLength(cout, cin);
        if (weights.Length < filters * channels * 9 || transformed.Length < Positions * packedLength || scratch.Length < FilterScratchLength(cout, cin))
        {
            throw new ArgumentException($"Winograd filter transform: spans too small for {filters} x {channels} 3 x 3 filters.");
        }
        // [36, Cout, Cin], packed per position below; positions a cache line further apart than Cout Cin floats, so that
        // the 36 values of one filter are not all written into the same L1 set (conv2: 8 KiB apart).
        Span<float> plain = scratch;
        double* gg = stackalloc double[18];   // G g: 6 x 3
        double* u = stackalloc double[Positions];
        int positionStride = cout * cin + 16;
        fixed (float* pw = weights, pp = plain)
        {
            for (int o = 0; o < cout; o++)
            {
                for (int c = 0; c < cin; c++)
                {
                    int f = flipTranspose ? c : o, ch = flipTranspose ? o : c;
                    float* g = pw + (long)(f * channels + ch) * 9;
                    for (int j = 0; j < 3; j++)
                    {
                        // Column j of g (of rot180(g) for the input gradient), then the rows of G g.
                        if (flipTranspose)
                        {
                            Interpolate(g[8 - j], g[5 - j], g[2 - j], gg + j, 3);
                        }
                        else
                        {
                            Interpolate(g[j], g[3 + j], g[6 + j], gg + j, 3);
                        }
                    }
                    for (int i = 0; i < 6; i++)
                    {
                        Interpolate(gg[i * 3], gg[i * 3 + 1], gg[i * 3 + 2], u + i * 6, 1);
                    }
                    float* dst = pp + (long)o * cin + c;
                    for (int p = 0; p < Positions; p++, dst += positionStride)
                    {
                        *dst = (float)u[p];
                    }
                }
            }
        }
        for (int p = 0; p < Positions; p++)
        {
            GemmF32.PackRows(plain.Slice(p * positionStride, cout * cin), cin, cout, cin, transformed.Slice(p * packedLength, packedLength));
        }
    }

    // The 1-D filter transform o = G (a, b, c): the filter polynomial evaluated at 0, 1, -1, 2, -2 and infinity, scaled
    // by G's factors (each row of G above), written at o[0], o[stride], ..., o[5 stride].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interpolate(double a, double b, double c, double* o, int stride)
    {
        // Multiplications by the reciprocals rather than divisions (a division costs several multiplications' time).
        const double Sixth = 1.0 / 6, Twelfth = 1.0 / 12, TwentyFourth = 1.0 / 24;
        double ac = a + c;
        o[0] = a * 0.25;
        o[stride] = -(ac + b) * Sixth;
        o[2 * stride] = -(ac - b) * Sixth;
        double even = a * TwentyFourth + c * Sixth, odd = b * Twelfth;
        o[3 * stride] = even + odd;
        o[4 * stride] = even - odd;
        o[5 * stride] = c;
    }

    /// <summary>
    /// Where <see cref="Prepare"/> puts pixel (0, 0) of channel 0 in the padded image; pixel (h, w) of channel c is at this
    /// offset + c <see cref="PaddedChannelStride"/> + h <see cref="PaddedRowStride"/> + w. A producer that writes the image
    /// there itself, into a buffer zeroed beforehand, prepares it without the copy (the fused conv1 -> conv2 inference step).
    /// </summary>
    public static int PaddedImageOffset(in ConvGeometry g) => g.PadHeight * PaddedWidth(g) + g.PadWidth;

    /// <summary>Floats between consecutive rows of the padded image.</summary>
    public static int PaddedRowStride(in ConvGeometry g) => PaddedWidth(g);

    /// <summary>Floats between consecutive channels of the padded image.</summary>
    public static int PaddedChannelStride(in ConvGeometry g) => PaddedHeight(g) * PaddedWidth(g);

    /// <summary>Copies the image into <paramref name="padded"/> (<see cref="PaddedLength"/> floats), zero around it and past the last tile.</summary>
    public static void Prepare(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> padded)
    {
        if (!Supports(g))
        {
            throw new PlatformNotSupportedException($"Winograd convolution does not support {g} on this CPU.");
        }
        int hp = PaddedHeight(g), wp = PaddedWidth(g);
        if (image.Length < g.InputSize || padded.Length < PaddedLength(g))
        {
            throw new ArgumentException($"Winograd convolution: spans too small for {g}.");
        }
        padded[..PaddedLength(g)].Clear();
        // Input rows beyond H + pad (when the last tile overhangs) stay zero; rows past the padded height never exist
        // because hp = 4 tiles + 2 >= OH + 2 = H + 2 pad.
        for (int c = 0; c < g.Channels; c++)
        {
            for (int h = 0; h < g.Height; h++)
            {
                image.Slice((c * g.Height + h) * g.Width, g.Width)
                    .CopyTo(padded.Slice((c * hp + h + g.PadHeight) * wp + g.PadWidth, g.Width));
            }
        }
    }

    /// <summary>
    /// Prepares the image and computes every chunk of y[Cout, OH OW] (+ bias, then max(0, .) when <paramref name="relu"/>).
    /// <paramref name="bias"/> may be empty (no bias).
    /// </summary>
    public static void Forward(ReadOnlySpan<float> image, in ConvGeometry g, ReadOnlySpan<float> transformedFilters, int outChannels,
        ReadOnlySpan<float> bias, bool relu, Span<float> y, Span<float> padded, Span<float> chunkScratch, KernelVariant variant)
    {
        Prepare(image, g, padded);
        Compute(g, transformedFilters, outChannels, bias, relu, padded, y, chunkScratch, 0, ChunkCount(g), variant);
    }

    /// <summary>
    /// Chunks [<paramref name="firstChunk"/>, + <paramref name="chunkCount"/>) of y from a <see cref="Prepare"/>d image:
    /// input transform, 36 GEMMs, output transform. Disjoint chunk ranges can run on different threads, each with its own
    /// <paramref name="chunkScratch"/> (<see cref="ChunkScratchLength"/> floats).
    /// </summary>
    public static void Compute(in ConvGeometry g, ReadOnlySpan<float> transformedFilters, int outChannels, ReadOnlySpan<float> bias, bool relu,
        ReadOnlySpan<float> padded, Span<float> y, Span<float> chunkScratch, int firstChunk, int chunkCount, KernelVariant variant)
    {
        int cin = g.Channels, cout = outChannels, tiles = TileCount(g);
        if (variant is not (KernelVariant.Avx2Fma or KernelVariant.Avx512) || (variant == KernelVariant.Avx512 && !Avx512F.IsSupported) || !Supports(g))
        {
            throw new PlatformNotSupportedException($"Winograd convolution: {variant} does not run {g} on this CPU.");
        }
        if (padded.Length < PaddedLength(g) || y.Length < cout * g.ColumnCols || chunkScratch.Length < ChunkScratchLength(cin, cout)
            || transformedFilters.Length < TransformedFiltersLength(cout, cin) || (bias.Length != 0 && bias.Length < cout)
            || firstChunk < 0 || chunkCount < 0 || firstChunk + chunkCount > ChunkCount(g))
        {
            throw new ArgumentException($"Winograd convolution: spans or chunks [{firstChunk}, +{chunkCount}) do not fit {g} with {cout} output channels.");
        }
        int nr = variant == KernelVariant.Avx512 ? 32 : 16;
        fixed (float* pu = transformedFilters, pb = bias, px = padded, py = y, ps = chunkScratch)
        {
            float* v = ps, m = ps + (long)Positions * PositionStride(cin);
            for (int chunk = firstChunk; chunk < firstChunk + chunkCount; chunk++)
            {
                int t0 = chunk * ChunkTiles, count = Math.Min(ChunkTiles, tiles - t0);
                int lanes = (count + nr - 1) / nr * nr;   // whole GEMM panels; tiles past the image are zero
                TransformInput(g, px, t0, count, lanes, nr, v);
                MultiplyPositions(cin, cout, pu, v, m, lanes, nr);
                TransformOutput(g, cout, m, pb, bias.Length != 0, relu, t0, count, py);
            }
        }
    }

    // V[xi, c, tile] for the chunk's tiles, written in the GEMM's panel layout: position xi's Cin x ChunkTiles matrix
    // as panels of nr tiles, v[xi][(t / nr) Cin nr + c nr + t % nr].
    [SkipLocalsInit]
    internal static void TransformInput(in ConvGeometry g, float* padded, int t0, int count, int lanes, int nr, float* v)
    {
        int cin = g.Channels, tw = TilesWide(g), hp = PaddedHeight(g), wp = PaddedWidth(g), plane = hp * wp;
        Vector256<float>* rows = stackalloc Vector256<float>[Positions];   // B^T applied along rows: r[i, l]
        float* gathered = stackalloc float[Positions * Lanes];
        int* allBases = stackalloc int[ChunkTiles];
        bool* contiguousGroups = stackalloc bool[ChunkTiles / Lanes];
        Vector256<float>* col = stackalloc Vector256<float>[InputTile];
        long positionStride = PositionStride(cin);
        for (int group = 0; group < lanes; group += Lanes)
        {
            int first = t0 + group, rowTile = first % tw;
            contiguousGroups[group / Lanes] = group + Lanes <= count && rowTile + Lanes <= tw;   // 8 tiles side by side in one tile row
            for (int lane = 0; lane < Lanes; lane++)
            {
                int t = first + lane;
                allBases[group + lane] = group + lane < count ? t / tw * OutputTile * wp + t % tw * OutputTile : -1;
            }
        }
        // Channel by channel, every group of the chunk: the groups of one channel fill the same cache lines of V (32 tiles,
        // 128 bytes per position), which are then written whole while in L1 rather than half by one group and half by the
        // next, a whole channel loop (72 KiB of V) later.
        for (int c = 0; c < cin; c++)
        {
            float* image = padded + (long)c * plane;
            for (int group = 0; group < lanes; group += Lanes)
            {
                int* bases = allBases + group;
                float* dst = v + group / nr * cin * nr + (long)c * nr + group % nr;
                if (contiguousGroups[group / Lanes])
                {
                    float* tile = image + bases[0];
                    for (int i = 0; i < InputTile; i++, tile += wp)
                    {
                        LoadPhases(tile, out Vector256<float> d0, out Vector256<float> d1, out Vector256<float> d2, out Vector256<float> d3);
                        LoadPhases(tile + OutputTile, out Vector256<float> d4, out Vector256<float> d5, out _, out _);
                        TransformRow(d0, d1, d2, d3, d4, d5, rows + i * InputTile);
                    }
                }
                else
                {
                    for (int lane = 0; lane < Lanes; lane++)
                    {
                        for (int ij = 0; ij < Positions; ij++)
                        {
                            gathered[ij * Lanes + lane] = bases[lane] < 0 ? 0f : image[bases[lane] + ij / InputTile * wp + ij % InputTile];
                        }
                    }
                    for (int i = 0; i < InputTile; i++)
                    {
                        float* r = gathered + i * InputTile * Lanes;
                        TransformRow(Avx.LoadVector256(r), Avx.LoadVector256(r + 8), Avx.LoadVector256(r + 16),
                            Avx.LoadVector256(r + 24), Avx.LoadVector256(r + 32), Avx.LoadVector256(r + 40), rows + i * InputTile);
                    }
                }
                // Columns: V[k, l] = sum over i of B^T[k, i] r[i, l], stored at position xi = 6 k + l.
                for (int l = 0; l < InputTile; l++)
                {
                    TransformColumn(rows[l], rows[6 + l], rows[12 + l], rows[18 + l], rows[24 + l], rows[30 + l], col);
                    for (int k = 0; k < InputTile; k++)
                    {
                        Avx.Store(dst + (k * InputTile + l) * positionStride, col[k]);
                    }
                }
            }
        }
    }

    // The 1-D input transform o = B^T d, with B^T's rows regrouped to share sums (each as in Lavin and Gray's B^T above).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformRow(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3,
        Vector256<float> d4, Vector256<float> d5, Vector256<float>* o)
    {
        Vector256<float> four = Vector256.Create(4f), five = Vector256.Create(-5f), two = Vector256.Create(2f);
        o[0] = Fma.MultiplyAdd(four, d0, Fma.MultiplyAdd(five, d2, d4));                  // 4 d0 - 5 d2 + d4
        Vector256<float> s12 = d1 + d2, s34 = d3 + d4, d12 = d1 - d2, d43 = d4 - d3;
        o[1] = Fma.MultiplyAddNegated(four, s12, s34);                                     // -4 (d1 + d2) + d3 + d4
        o[2] = Fma.MultiplyAdd(four, d12, d43);                                            //  4 (d1 - d2) - d3 + d4
        Vector256<float> d42 = d4 - d2, d31 = d3 - d1;
        o[3] = Fma.MultiplyAdd(two, d31, d42);                                             //  2 (d3 - d1) - d2 + d4
        o[4] = Fma.MultiplyAddNegated(two, d31, d42);                                      // -2 (d3 - d1) - d2 + d4
        o[5] = Fma.MultiplyAdd(four, d1, Fma.MultiplyAdd(five, d3, d5));                  // 4 d1 - 5 d3 + d5
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformColumn(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3,
        Vector256<float> d4, Vector256<float> d5, Vector256<float>* o) => TransformRow(d0, d1, d2, d3, d4, d5, o);

    // Eight tiles side by side: row[4 lane + j] for j = 0..3, as four vectors over the lanes (a 4 x 8 transpose of 32 floats).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadPhases(float* row, out Vector256<float> p0, out Vector256<float> p1, out Vector256<float> p2, out Vector256<float> p3)
    {
        Vector256<float> l0 = Avx.LoadVector256(row), l1 = Avx.LoadVector256(row + 8), l2 = Avx.LoadVector256(row + 16), l3 = Avx.LoadVector256(row + 24);
        Vector256<float> u0 = Avx.Permute2x128(l0, l2, 0x20), u1 = Avx.Permute2x128(l0, l2, 0x31);   // lanes 0|4, 1|5
        Vector256<float> u2 = Avx.Permute2x128(l1, l3, 0x20), u3 = Avx.Permute2x128(l1, l3, 0x31);   // lanes 2|6, 3|7
        Vector256<float> t0 = Avx.UnpackLow(u0, u1), t1 = Avx.UnpackHigh(u0, u1);
        Vector256<float> t2 = Avx.UnpackLow(u2, u3), t3 = Avx.UnpackHigh(u2, u3);
        p0 = Avx.Shuffle(t0, t2, 0x44);
        p1 = Avx.Shuffle(t0, t2, 0xEE);
        p2 = Avx.Shuffle(t1, t3, 0x44);
        p3 = Avx.Shuffle(t1, t3, 0xEE);
    }

    // The inverse of LoadPhases: row[4 lane + j] = pj[lane].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePhases(float* row, Vector256<float> p0, Vector256<float> p1, Vector256<float> p2, Vector256<float> p3)
    {
        Vector256<float> t0 = Avx.UnpackLow(p0, p1), t1 = Avx.UnpackHigh(p0, p1);
        Vector256<float> t2 = Avx.UnpackLow(p2, p3), t3 = Avx.UnpackHigh(p2, p3);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Avx.Store(row, Avx.Permute2x128(u0, u1, 0x20));
        Avx.Store(row + 8, Avx.Permute2x128(u2, u3, 0x20));
        Avx.Store(row + 16, Avx.Permute2x128(u0, u1, 0x31));
        Avx.Store(row + 24, Avx.Permute2x128(u2, u3, 0x31));
    }

    // M[xi] (Cout x lanes, leading dimension ChunkTiles) = U[xi] (packed Cout x Cin) V[xi] (Cin x lanes, panels of nr).
    internal static void MultiplyPositions(int cin, int cout, float* u, float* v, float* m, int lanes, int nr)
    {
        long packedLength = GemmF32.PackedRowsLength(cout, cin);
        for (int xi = 0; xi < Positions; xi++)
        {
            float* a = u + xi * packedLength, b = v + (long)xi * PositionStride(cin), c = m + (long)xi * PositionStride(cout);
            for (int ic = 0; ic < cout; ic += GemmF32.RowBlock)
            {
                int mc = Math.Min(GemmF32.RowBlock, cout - ic);
                for (int p0 = 0; p0 < cin; p0 += GemmF32.DepthBlock)
                {
                    int kc = Math.Min(GemmF32.DepthBlock, cin - p0);
                    float* block = a + GemmF32.RowBlockOffset(ic, p0, mc, cin);
                    for (int j0 = 0; j0 < lanes; j0 += nr)
                    {
                        float* panel = b + (long)j0 * cin + (long)p0 * nr;
                        for (int ir = 0; ir < mc; ir += 6)
                        {
                            float* tile = c + (long)(ic + ir) * ChunkTiles + j0;
                            int rows = Math.Min(6, mc - ir);
                            if (nr == 32 && rows <= 4)
                            {
                                // The last rows of an output-channel count that is not a multiple of 6 (64 = 10 x 6 + 4;
                                // 32 = 5 x 6 + 2 after pruning): 4 rows' multiply-adds rather than 6, each output the same
                                // chain as in the 6-row kernel.
                                GemmF32.MicroKernel4x32(kc, block + (long)ir * kc, new GemmF32.PackedRows512(panel), tile, ChunkTiles, p0 > 0, rows);
                            }
                            else if (nr == 32)
                            {
                                GemmF32.MicroKernel6x32(kc, block + (long)ir * kc, new GemmF32.PackedRows512(panel), tile, ChunkTiles, p0 > 0, rows, nr);
                            }
                            else
                            {
                                GemmF32.MicroKernel6x16(kc, block + (long)ir * kc, new GemmF32.PackedRows(panel), tile, ChunkTiles, p0 > 0, rows, nr);
                            }
                        }
                    }
                }
            }
        }
    }

    // Y = A^T M A per tile and output channel, plus bias, optionally ReLU, written to y[o, 4 th + i, 4 tw + j] inside the image.
    [SkipLocalsInit]
    internal static void TransformOutput(in ConvGeometry g, int cout, float* m, float* bias, bool hasBias, bool relu, int t0, int count, float* y)
    {
        int tw = TilesWide(g), oh = g.OutHeight, ow = g.OutWidth, pixels = oh * ow;
        long positionStride = PositionStride(cout);
        Vector256<float>* cols = stackalloc Vector256<float>[4 * InputTile];   // A^T applied down the columns: c[i, b]
        Vector256<float>* outRow = stackalloc Vector256<float>[4];
        float* spill = stackalloc float[4 * Lanes];
        // Channel by channel, every group of the chunk: the groups of one channel read the same cache lines of M (32 tiles,
        // 128 bytes per position) one after the other, each brought into L1 once rather than once per group.
        for (int o = 0; o < cout; o++)
        {
            for (int group = 0; group < count; group += Lanes)
            {
                int first = t0 + group, th = first / tw, rowTile = first % tw;
                bool contiguous = group + Lanes <= count && rowTile + Lanes <= tw && (rowTile + Lanes) * OutputTile <= ow && th * OutputTile + 3 < oh;
                float* src = m + (long)o * ChunkTiles + group;
                for (int b = 0; b < InputTile; b++)
                {
                    TransformOutputColumn(Avx.LoadVector256(src + b * positionStride), Avx.LoadVector256(src + (6 + b) * positionStride),
                        Avx.LoadVector256(src + (12 + b) * positionStride), Avx.LoadVector256(src + (18 + b) * positionStride),
                        Avx.LoadVector256(src + (24 + b) * positionStride), Avx.LoadVector256(src + (30 + b) * positionStride),
                        cols + b, InputTile);
                }
                Vector256<float> shift = Vector256.Create(hasBias ? bias[o] : 0f);
                float* plane = y + (long)o * pixels;
                for (int i = 0; i < OutputTile; i++)
                {
                    Vector256<float>* r = cols + i * InputTile;
                    TransformOutputColumn(r[0], r[1], r[2], r[3], r[4], r[5], outRow, 1);
                    for (int j = 0; j < OutputTile; j++)
                    {
                        outRow[j] += shift;
                        if (relu)
                        {
                            outRow[j] = Avx.Max(outRow[j], Vector256<float>.Zero);
                        }
                    }
                    if (contiguous)
                    {
                        StorePhases(plane + (long)(th * OutputTile + i) * ow + rowTile * OutputTile, outRow[0], outRow[1], outRow[2], outRow[3]);
                        continue;
                    }
                    for (int j = 0; j < OutputTile; j++)
                    {
                        Avx.Store(spill + j * Lanes, outRow[j]);
                    }
                    for (int lane = 0; lane < Lanes && group + lane < count; lane++)
                    {
                        int t = first + lane, row = t / tw * OutputTile + i, col = t % tw * OutputTile;
                        for (int j = 0; j < OutputTile && row < oh && col + j < ow; j++)
                        {
                            plane[(long)row * ow + col + j] = spill[j * Lanes + lane];
                        }
                    }
                }
            }
        }
    }

    // The 1-D output transform y = A^T m (6 -> 4), written at o[0], o[stride], o[2 stride], o[3 stride].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformOutputColumn(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3,
        Vector256<float> m4, Vector256<float> m5, Vector256<float>* o, int stride)
    {
        Vector256<float> s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
        o[0] = m0 + s12 + s34;                                                              // m0 + m1 + m2 + m3 + m4
        o[stride] = Fma.MultiplyAdd(Vector256.Create(2f), d34, d12);                       // m1 - m2 + 2 (m3 - m4)
        o[2 * stride] = Fma.MultiplyAdd(Vector256.Create(4f), s34, s12);                   // m1 + m2 + 4 (m3 + m4)
        o[3 * stride] = Fma.MultiplyAdd(Vector256.Create(8f), d34, d12) + m5;             // m1 - m2 + 8 (m3 - m4) + m5
    }

    /// <summary>
    /// The reference: the same algorithm written plainly, one tile, channel pair and matrix product at a time, with the
    /// matrices as written in the paper (U in double rounded to float, then float arithmetic). Slow; for the tests.
    /// <paramref name="weights"/> is [Cout, Cin, 3, 3], y is [Cout, OH, OW]; <paramref name="bias"/> may be empty.
    /// </summary>
    public static void ForwardScalar(ReadOnlySpan<float> image, in ConvGeometry g, ReadOnlySpan<float> weights, int outChannels,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        int cin = g.Channels, oh = g.OutHeight, ow = g.OutWidth;
        var u = new float[outChannels, cin, 6, 6];
        for (int o = 0; o < outChannels; o++)
        {
            for (int c = 0; c < cin; c++)
            {
                for (int i = 0; i < 6; i++)
                {
                    for (int j = 0; j < 6; j++)
                    {
                        double s = 0;
                        for (int k = 0; k < 3; k++)
                        {
                            for (int l = 0; l < 3; l++)
                            {
                                s += G[i, k] * weights[((o * cin + c) * 3 + k) * 3 + l] * G[j, l];
                            }
                        }
                        u[o, c, i, j] = (float)s;
                    }
                }
            }
        }
        var d = new float[6, 6];
        var v = new float[cin, 6, 6];
        var t = new float[6, 6];
        for (int th = 0; th < TilesHigh(g); th++)
        {
            for (int tw = 0; tw < TilesWide(g); tw++)
            {
                for (int c = 0; c < cin; c++)
                {
                    for (int i = 0; i < 6; i++)
                    {
                        for (int j = 0; j < 6; j++)
                        {
                            int h = th * 4 + i - g.PadHeight, w = tw * 4 + j - g.PadWidth;
                            d[i, j] = h >= 0 && h < g.Height && w >= 0 && w < g.Width ? image[(c * g.Height + h) * g.Width + w] : 0f;
                        }
                    }
                    for (int i = 0; i < 6; i++)
                    {
                        for (int j = 0; j < 6; j++)
                        {
                            float s = 0;
                            for (int k = 0; k < 6; k++)
                            {
                                s += (float)BT[i, k] * d[k, j];
                            }
                            t[i, j] = s;
                        }
                    }
                    for (int i = 0; i < 6; i++)
                    {
                        for (int j = 0; j < 6; j++)
                        {
                            float s = 0;
                            for (int k = 0; k < 6; k++)
                            {
                                s += t[i, k] * (float)BT[j, k];
                            }
                            v[c, i, j] = s;
                        }
                    }
                }
                for (int o = 0; o < outChannels; o++)
                {
                    for (int i = 0; i < 6; i++)
                    {
                        for (int j = 0; j < 6; j++)
                        {
                            float s = 0;
                            for (int c = 0; c < cin; c++)
                            {
                                s += u[o, c, i, j] * v[c, i, j];
                            }
                            t[i, j] = s;
                        }
                    }
                    for (int i = 0; i < 4; i++)
                    {
                        for (int j = 0; j < 4; j++)
                        {
                            float s = 0;
                            for (int a = 0; a < 6; a++)
                            {
                                for (int b = 0; b < 6; b++)
                                {
                                    s += (float)AT[i, a] * t[a, b] * (float)AT[j, b];
                                }
                            }
                            int h = th * 4 + i, w = tw * 4 + j;
                            if (h < oh && w < ow)
                            {
                                y[(o * oh + h) * ow + w] = s + (bias.Length != 0 ? bias[o] : 0f);
                            }
                        }
                    }
                }
            }
        }
    }
}
