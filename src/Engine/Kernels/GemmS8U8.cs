using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// Exact integer matrix product for the int8 path: C[m x n] = A[m x k] B[k x n] in int32, with A int8 (weights, one row
/// per output channel) and B uint8 (activations, for example an im2col matrix). Zero points stay out of the loop: the
/// caller corrects with precomputed row and column sums, (A - za)(B - zb) = AB - zb rowsum(A) - za colsum(B) + k za zb
/// (gemmlowp, doc/low-precision.md).
/// <para>
/// Both operands are packed first, A once per layer (weights do not change) and B once per call, into the order the
/// micro-kernel reads them: depth in groups of g consecutive steps, g = <see cref="GroupSize"/> of the variant.
/// </para>
/// <list type="bullet">
/// <item><b>Avx2Fma</b> (and the portable Scalar packed loop), g = 2: both operands widen to int16 and vpmaddwd
/// (<see cref="Avx2.MultiplyAddAdjacent(Vector256{short}, Vector256{short})"/>) adds a[p] b[p] + a[p+1] b[p+1] into each
/// int32 lane, at most 2 x 128 x 255 = 65,280 in magnitude: nothing saturates. (vpmaddubsw, which multiplies u8 by s8
/// into saturating int16, would overflow on 255 x 127 x 2: docs/quantization.md, "4. The integer GEMM, and the saturation hazard".)</item>
/// <item><b>AvxVnni</b>, g = 4: vpdpbusd (<see cref="AvxVnni.MultiplyWideningAndAdd(Vector256{int}, Vector256{byte}, Vector256{sbyte})"/>)
/// multiplies four u8 x s8 products and adds them straight into an int32 lane, without an int16 stage: exact too, and
/// four times the work of vpmaddwd per instruction. Used only where the CPU has AVX-VNNI.</item>
/// </list>
/// <code>
///   packed A (int32)  [row block of 4][group q][row r] = A[r, g q .. g q + g - 1]   (int16 halves for g = 2, bytes for g = 4; 0 past k)
///   packed B (uint8)  [panel of 16 columns][group q][32 or 64 bytes]                 (0 past k and past n)
///     g = 2: bytes 2t, 2t+1 of the first 16 hold column t &lt; 8, of the second 16 column t - 8 (zero-extended: 8 int16 pairs)
///     g = 4: bytes 4t .. 4t+3 hold column t (one 32-byte vector per 8 columns, lane t = column t)
/// </code>
/// Every variant equals the three-loop scalar reference bit for bit.
/// </summary>
public static unsafe class GemmS8U8
{
    /// <summary>Rows of C computed together by the micro-kernel.</summary>
    public const int RowBlock = 4;

    /// <summary>Columns of C computed together by the micro-kernel (one packed B panel).</summary>
    public const int PanelWidth = 16;

    /// <summary>The fastest variant this CPU runs.</summary>
    public static KernelVariant Best { get; } =
        AvxVnni.IsSupported ? KernelVariant.AvxVnni : Avx2.IsSupported ? KernelVariant.Avx2Fma : KernelVariant.Scalar;

    /// <summary>Every variant this CPU runs, reference first.</summary>
    public static IReadOnlyList<KernelVariant> SupportedVariants { get; } =
    [
        KernelVariant.Scalar,
        .. Avx2.IsSupported ? [KernelVariant.Avx2Fma] : Array.Empty<KernelVariant>(),
        .. AvxVnni.IsSupported ? [KernelVariant.AvxVnni] : Array.Empty<KernelVariant>(),
    ];

    /// <summary>Depth steps per packed group: 4 for AvxVnni, 2 otherwise.</summary>
    public static int GroupSize(KernelVariant variant) => variant == KernelVariant.AvxVnni ? 4 : 2;

    /// <summary>Packed depth groups for depth <paramref name="k"/>.</summary>
    public static int DepthGroups(int k, KernelVariant variant) => (k + GroupSize(variant) - 1) / GroupSize(variant);

    /// <summary>Packed B panels for <paramref name="n"/> columns.</summary>
    public static int Panels(int n) => (n + PanelWidth - 1) / PanelWidth;

    /// <summary>int32 elements <see cref="PackWeights"/> writes for an m x k matrix.</summary>
    public static int PackedWeightsLength(int m, int k, KernelVariant variant) =>
        (m + RowBlock - 1) / RowBlock * RowBlock * DepthGroups(k, variant);

    /// <summary>Bytes <see cref="PackActivations"/> writes for a k x n matrix.</summary>
    public static int PackedActivationsLength(int k, int n, KernelVariant variant) => Panels(n) * PanelLength(k, variant);

    /// <summary>Bytes of one packed B panel.</summary>
    public static int PanelLength(int k, KernelVariant variant) => DepthGroups(k, variant) * GroupSize(variant) * PanelWidth;

    /// <summary>Packs A[m x k] (row-major, leading dimension <paramref name="lda"/>) by row block and depth group.</summary>
    public static void PackWeights(int m, int k, ReadOnlySpan<sbyte> a, int lda, Span<int> packed, KernelVariant variant)
    {
        CheckDimensions(m, 1, k);
        Check("A", m, k, a.Length, lda);
        int group = GroupSize(variant), groups = DepthGroups(k, variant), length = PackedWeightsLength(m, k, variant);
        if (packed.Length < length)
        {
            throw new ArgumentException($"int8 GEMM: packed A needs {length} elements, got {packed.Length}.");
        }
        packed[..length].Clear();
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<sbyte> row = a.Slice(i * lda, k);
            int blockBase = i / RowBlock * groups * RowBlock + i % RowBlock;
            for (int q = 0; q < groups; q++)
            {
                int value = 0;
                for (int e = 0; e < group && group * q + e < k; e++)
                {
                    // g = 2: sign-extended int16 halves; g = 4: raw bytes.
                    value |= group == 2 ? (ushort)row[group * q + e] << (16 * e) : (byte)row[group * q + e] << (8 * e);
                }
                packed[blockBase + q * RowBlock] = value;
            }
        }
    }

    /// <summary>Packs B[k x n] (row-major, leading dimension <paramref name="ldb"/>) into panels of 16 columns by depth group.</summary>
    public static void PackActivations(int k, int n, ReadOnlySpan<byte> b, int ldb, Span<byte> packed, KernelVariant variant)
    {
        CheckDimensions(1, n, k);
        Check("B", k, n, b.Length, ldb);
        int group = GroupSize(variant), groups = DepthGroups(k, variant), panelLength = PanelLength(k, variant);
        CheckPacked(packed.Length, PackedActivationsLength(k, n, variant));
        fixed (byte* source = b, destination = packed)
        {
            for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
            {
                int cols = Math.Min(PanelWidth, n - j0);
                byte* dst = destination + (long)panel * panelLength;
                for (int q = 0; q < groups; q++, dst += group * PanelWidth)
                {
                    if (cols == PanelWidth)
                    {
                        // Rows past k are null: zeros.
                        byte* row = source + (long)group * q * ldb + j0;
                        int present = Math.Min(group, k - group * q);
                        InterleaveGroup(row, present > 1 ? row + ldb : null, present > 2 ? row + 2L * ldb : null,
                            present > 3 ? row + 3L * ldb : null, dst, group);
                        continue;
                    }
                    new Span<byte>(dst, group * PanelWidth).Clear();
                    for (int t = 0; t < cols; t++)
                    {
                        for (int e = 0; e < group && group * q + e < k; e++)
                        {
                            dst[ByteOffset(t, group) + e] = source[(long)(group * q + e) * ldb + j0 + t];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs B = Xᵀ where X[n x k] is row-major with leading dimension <paramref name="ldx"/>: a batch of input vectors,
    /// one per row, becomes the k x n right operand of a linear layer (C[out x n] = W X ᵀ).
    /// </summary>
    public static void PackActivationsTransposed(int k, int n, ReadOnlySpan<byte> x, int ldx, Span<byte> packed, KernelVariant variant)
    {
        CheckDimensions(1, n, k);
        Check("X", n, k, x.Length, ldx);
        int group = GroupSize(variant), groups = DepthGroups(k, variant), panelLength = PanelLength(k, variant);
        int length = PackedActivationsLength(k, n, variant);
        CheckPacked(packed.Length, length);
        packed[..length].Clear();
        for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
        {
            int cols = Math.Min(PanelWidth, n - j0);
            Span<byte> dst = packed.Slice(panel * panelLength, panelLength);
            for (int t = 0; t < cols; t++)
            {
                // Column t of the panel is sample j0 + t: its k values, g at a time, go to the same offset of every group.
                ReadOnlySpan<byte> sample = x.Slice((j0 + t) * ldx, k);
                int offset = ByteOffset(t, group);
                // Group by group, without a division per byte (fc1 packs 4,096 bytes per sample).
                for (int p0 = 0, at = offset; p0 < k; p0 += group, at += group * PanelWidth)
                {
                    int present = Math.Min(group, k - p0);
                    sample.Slice(p0, present).CopyTo(dst.Slice(at, present));
                }
            }
        }
    }

    /// <summary>
    /// One depth group of one full panel from 16 bytes of each of its g rows (a null row is the zeros past k):
    /// byte-interleaved pairs (g = 2, 32 bytes) or quads (g = 4, 64 bytes) in the packed B order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleaveGroup(byte* row0, byte* row1, byte* row2, byte* row3, byte* dst, int group)
    {
        if (group == 2)
        {
            InterleavePairs(row0, row1, dst);
        }
        else
        {
            InterleaveQuads(row0, row1, row2, row3, dst);
        }
    }

    /// <summary>Rows p and p + 1 (null: zeros) of a full panel as 16 byte pairs: columns 0-7, then 8-15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleavePairs(byte* row0, byte* row1, byte* dst)
    {
        if (Sse2.IsSupported)
        {
            Vector128<byte> v0 = Sse2.LoadVector128(row0);
            Vector128<byte> v1 = row1 == null ? Vector128<byte>.Zero : Sse2.LoadVector128(row1);
            Sse2.Store(dst, Sse2.UnpackLow(v0, v1));
            Sse2.Store(dst + PanelWidth, Sse2.UnpackHigh(v0, v1));
            return;
        }
        for (int t = 0; t < PanelWidth; t++)
        {
            int o = ByteOffset(t, 2);
            dst[o] = row0[t];
            dst[o + 1] = row1 == null ? (byte)0 : row1[t];
        }
    }

    /// <summary>Rows p .. p + 3 (null: zeros) of a full panel as 16 byte quads, column by column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleaveQuads(byte* row0, byte* row1, byte* row2, byte* row3, byte* dst)
    {
        if (Sse2.IsSupported)
        {
            Vector128<byte> v0 = Sse2.LoadVector128(row0);
            Vector128<byte> v1 = row1 == null ? Vector128<byte>.Zero : Sse2.LoadVector128(row1);
            Vector128<byte> v2 = row2 == null ? Vector128<byte>.Zero : Sse2.LoadVector128(row2);
            Vector128<byte> v3 = row3 == null ? Vector128<byte>.Zero : Sse2.LoadVector128(row3);
            // Byte pairs (0,1) and (2,3) of each column, then the two pairs side by side: four columns per 16 bytes.
            Vector128<ushort> low01 = Sse2.UnpackLow(v0, v1).AsUInt16(), high01 = Sse2.UnpackHigh(v0, v1).AsUInt16();
            Vector128<ushort> low23 = Sse2.UnpackLow(v2, v3).AsUInt16(), high23 = Sse2.UnpackHigh(v2, v3).AsUInt16();
            Sse2.Store(dst, Sse2.UnpackLow(low01, low23).AsByte());
            Sse2.Store(dst + 16, Sse2.UnpackHigh(low01, low23).AsByte());
            Sse2.Store(dst + 32, Sse2.UnpackLow(high01, high23).AsByte());
            Sse2.Store(dst + 48, Sse2.UnpackHigh(high01, high23).AsByte());
            return;
        }
        for (int t = 0; t < PanelWidth; t++)
        {
            dst[4 * t] = row0[t];
            dst[4 * t + 1] = row1 == null ? (byte)0 : row1[t];
            dst[4 * t + 2] = row2 == null ? (byte)0 : row2[t];
            dst[4 * t + 3] = row3 == null ? (byte)0 : row3[t];
        }
    }

    /// <summary>
    /// <see cref="InterleavePairs"/> for two adjacent full panels at once (AVX2): 32 consecutive bytes of rows p and p + 1
    /// hold columns 0-15 of one panel and 0-15 of the next; the pairs of the first go to <paramref name="dst0"/>, those of
    /// the second to <paramref name="dst1"/>. The same bytes as two <see cref="InterleavePairs"/> calls, with half the
    /// loads and stores (the 128-bit unpacks work per half, so a lane permute regroups the halves by panel).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleavePairsTwoPanels(byte* row0, byte* row1, byte* dst0, byte* dst1)
    {
        Vector256<byte> v0 = Avx.LoadVector256(row0), v1 = Avx.LoadVector256(row1);
        Vector256<byte> low = Avx2.UnpackLow(v0, v1), high = Avx2.UnpackHigh(v0, v1);   // [0-7 | 16-23], [8-15 | 24-31]
        Avx.Store(dst0, Avx2.Permute2x128(low, high, 0x20));
        Avx.Store(dst1, Avx2.Permute2x128(low, high, 0x31));
    }

    /// <summary>
    /// <see cref="InterleaveQuads"/> for two adjacent full panels at once (AVX2), as <see cref="InterleavePairsTwoPanels"/>:
    /// the quads of columns 0-15 go to <paramref name="dst0"/>, those of columns 16-31 to <paramref name="dst1"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void InterleaveQuadsTwoPanels(byte* row0, byte* row1, byte* row2, byte* row3, byte* dst0, byte* dst1)
    {
        Vector256<byte> v0 = Avx.LoadVector256(row0), v1 = Avx.LoadVector256(row1);
        Vector256<byte> v2 = Avx.LoadVector256(row2), v3 = Avx.LoadVector256(row3);
        Vector256<ushort> low01 = Avx2.UnpackLow(v0, v1).AsUInt16(), high01 = Avx2.UnpackHigh(v0, v1).AsUInt16();
        Vector256<ushort> low23 = Avx2.UnpackLow(v2, v3).AsUInt16(), high23 = Avx2.UnpackHigh(v2, v3).AsUInt16();
        Vector256<byte> q0 = Avx2.UnpackLow(low01, low23).AsByte();       // columns [0-3 | 16-19]
        Vector256<byte> q1 = Avx2.UnpackHigh(low01, low23).AsByte();      // [4-7 | 20-23]
        Vector256<byte> q2 = Avx2.UnpackLow(high01, high23).AsByte();     // [8-11 | 24-27]
        Vector256<byte> q3 = Avx2.UnpackHigh(high01, high23).AsByte();    // [12-15 | 28-31]
        Avx.Store(dst0, Avx2.Permute2x128(q0, q1, 0x20));
        Avx.Store(dst0 + 32, Avx2.Permute2x128(q2, q3, 0x20));
        Avx.Store(dst1, Avx2.Permute2x128(q0, q1, 0x31));
        Avx.Store(dst1 + 32, Avx2.Permute2x128(q2, q3, 0x31));
    }

    /// <summary>Where column t's group starts inside a packed depth group (see the layout above).</summary>
    internal static int ByteOffset(int t, int group) => group == 4 ? 4 * t : t < 8 ? 2 * t : PanelWidth + 2 * (t - 8);

    /// <summary>Sum over depth of every column of a packed B (for the za colsum(B) correction of asymmetric weights).</summary>
    public static void PackedColumnSums(int k, int n, ReadOnlySpan<byte> packedB, Span<int> sums, KernelVariant variant)
    {
        int group = GroupSize(variant), groups = DepthGroups(k, variant), panelLength = PanelLength(k, variant);
        for (int j = 0; j < n; j++)
        {
            int offset = ByteOffset(j % PanelWidth, group);
            ReadOnlySpan<byte> panel = packedB.Slice(j / PanelWidth * panelLength, panelLength);
            int sum = 0;
            for (int q = 0; q < groups; q++)
            {
                for (int e = 0; e < group; e++)
                {
                    sum += panel[q * group * PanelWidth + offset + e];
                }
            }
            sums[j] = sum;
        }
    }

    /// <summary>
    /// C[m x n] = A B from operands packed for <paramref name="variant"/> (<see cref="PackWeights"/>,
    /// <see cref="PackActivations"/>), exactly, in int32. Scalar runs a portable loop over the packed layout (the
    /// fallback without AVX2).
    /// </summary>
    public static void MultiplyPacked(int m, int n, int k, ReadOnlySpan<int> packedA, ReadOnlySpan<byte> packedB,
        Span<int> c, int ldc, KernelVariant variant)
    {
        CheckDimensions(m, n, k);
        Check("C", m, n, c.Length, ldc);
        if (packedA.Length < PackedWeightsLength(m, k, variant) || packedB.Length < PackedActivationsLength(k, n, variant))
        {
            throw new ArgumentException($"int8 GEMM: packed operands of {packedA.Length} and {packedB.Length} do not fit m={m}, n={n}, k={k}.");
        }
        if (m == 0 || n == 0)
        {
            return;
        }
        if ((variant == KernelVariant.Avx2Fma && !Avx2.IsSupported) || (variant == KernelVariant.AvxVnni && !AvxVnni.IsSupported)
            || variant == KernelVariant.Vector)
        {
            throw new PlatformNotSupportedException($"int8 GEMM variant {variant} is not supported on this CPU.");
        }
        int groups = DepthGroups(k, variant), panelLength = PanelLength(k, variant);
        Span<int> tile = stackalloc int[RowBlock * PanelWidth];
        fixed (int* pa = packedA, pt = tile, pc = c)
        fixed (byte* pb = packedB)
        {
            // Panel outer, row block inner: a panel of B stays in L1 while every row block of A meets it.
            for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
            {
                int cols = Math.Min(PanelWidth, n - j0);
                for (int i0 = 0; i0 < m; i0 += RowBlock)
                {
                    int rows = Math.Min(RowBlock, m - i0);
                    int* a = pa + i0 / RowBlock * groups * RowBlock;
                    byte* b = pb + (long)panel * panelLength;
                    // A whole tile goes straight to C; an edge tile goes through the stack and only its valid part is copied.
                    bool whole = rows == RowBlock && cols == PanelWidth;
                    int* destination = whole ? pc + (long)i0 * ldc + j0 : pt;
                    int ld = whole ? ldc : PanelWidth;
                    switch (variant)
                    {
                        case KernelVariant.AvxVnni:
                            MicroKernelVnni4x16(groups, a, b, destination, ld);
                            break;
                        case KernelVariant.Avx2Fma:
                            MicroKernel4x16(groups, a, b, destination, ld);
                            break;
                        default:
                            PortableTile(groups, a, b, pt);
                            if (whole)
                            {
                                for (int r = 0; r < RowBlock; r++)
                                {
                                    tile.Slice(r * PanelWidth, PanelWidth).CopyTo(c.Slice((i0 + r) * ldc + j0, PanelWidth));
                                }
                            }
                            break;
                    }
                    if (!whole)
                    {
                        for (int r = 0; r < rows; r++)
                        {
                            tile.Slice(r * PanelWidth, cols).CopyTo(c.Slice((i0 + r) * ldc + j0, cols));
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// C[i, j] = sum over p of A[i * lda + p] B[p * ldb + j], exactly, in int32. Scalar is the reference (three loops on
    /// the unpacked operands); other variants pack into temporary arrays and run <see cref="MultiplyPacked"/>.
    /// </summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb,
        Span<int> c, int ldc, KernelVariant variant)
    {
        CheckDimensions(m, n, k);
        Check("A", m, k, a.Length, lda);
        Check("B", k, n, b.Length, ldb);
        Check("C", m, n, c.Length, ldc);
        if (variant == KernelVariant.Scalar)
        {
            Scalar(m, n, k, a, lda, b, ldb, c, ldc);
            return;
        }
        int[] packedA = new int[PackedWeightsLength(m, k, variant)];
        byte[] packedB = new byte[PackedActivationsLength(k, n, variant)];
        if (m > 0 && n > 0 && k > 0)
        {
            PackWeights(m, k, a, lda, packedA, variant);
            PackActivations(k, n, b, ldb, packedB, variant);
        }
        MultiplyPacked(m, n, k, packedA, packedB, c, ldc, variant);
    }

    /// <summary>
    /// One 4 x 16 tile, tile[r * ld + t] = sum over the k depth of row block a and panel b (packed for
    /// <paramref name="variant"/>, <paramref name="groups"/> depth groups): the micro-kernel <see cref="MultiplyPacked"/>
    /// runs, for kernels that consume a tile while it is in L1 (<see cref="PooledGemmQ8"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Tile(int groups, int* a, byte* b, int* tile, int ld, KernelVariant variant)
    {
        switch (variant)
        {
            case KernelVariant.AvxVnni:
                MicroKernelVnni4x16(groups, a, b, tile, ld);
                break;
            case KernelVariant.Avx2Fma:
                MicroKernel4x16(groups, a, b, tile, ld);
                break;
            default:
                PortableTile(groups, a, b, tile);
                if (ld != PanelWidth)
                {
                    for (int r = RowBlock - 1; r > 0; r--)
                    {
                        new Span<int>(tile + r * PanelWidth, PanelWidth).CopyTo(new Span<int>(tile + r * ld, PanelWidth));
                    }
                }
                break;
        }
    }

    /// <summary>The reference: three loops in int32.</summary>
    private static void Scalar(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb, Span<int> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                int sum = 0;
                for (int p = 0; p < k; p++)
                {
                    sum += a[i * lda + p] * b[p * ldb + j];
                }
                c[i * ldc + j] = sum;
            }
        }
    }

    // The pair layout read with plain loops: what the AVX2 kernel computes, for CPUs without it.
    private static void PortableTile(int pairs, int* a, byte* b, int* tile)
    {
        new Span<int>(tile, RowBlock * PanelWidth).Clear();
        for (int q = 0; q < pairs; q++, a += RowBlock, b += 2 * PanelWidth)
        {
            for (int r = 0; r < RowBlock; r++)
            {
                int lo = (short)a[r], hi = a[r] >> 16;
                for (int t = 0; t < PanelWidth; t++)
                {
                    int offset = ByteOffset(t, 2);
                    tile[r * PanelWidth + t] += lo * b[offset] + hi * b[offset + 1];
                }
            }
        }
    }

    // 4 rows x 16 columns of int32: per depth pair, two zero-extending loads of B (16 bytes -> 16 x int16 each) and four
    // broadcasts of A's int16 pairs; eight vpmaddwd accumulate into eight registers.
    private static void MicroKernel4x16(int pairs, int* a, byte* b, int* tile, int ld)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0; q < pairs; q++)
        {
            Vector256<short> b0 = Avx2.ConvertToVector256Int16(b);
            Vector256<short> b1 = Avx2.ConvertToVector256Int16(b + 16);
            Vector256<short> a0 = Vector256.Create(a[0]).AsInt16();
            c00 = Avx2.Add(c00, Avx2.MultiplyAddAdjacent(a0, b0));
            c01 = Avx2.Add(c01, Avx2.MultiplyAddAdjacent(a0, b1));
            Vector256<short> a1 = Vector256.Create(a[1]).AsInt16();
            c10 = Avx2.Add(c10, Avx2.MultiplyAddAdjacent(a1, b0));
            c11 = Avx2.Add(c11, Avx2.MultiplyAddAdjacent(a1, b1));
            Vector256<short> a2 = Vector256.Create(a[2]).AsInt16();
            c20 = Avx2.Add(c20, Avx2.MultiplyAddAdjacent(a2, b0));
            c21 = Avx2.Add(c21, Avx2.MultiplyAddAdjacent(a2, b1));
            Vector256<short> a3 = Vector256.Create(a[3]).AsInt16();
            c30 = Avx2.Add(c30, Avx2.MultiplyAddAdjacent(a3, b0));
            c31 = Avx2.Add(c31, Avx2.MultiplyAddAdjacent(a3, b1));
            a += RowBlock;
            b += 2 * PanelWidth;
        }
        Store(tile, ld, c00, c01, c10, c11, c20, c21, c30, c31);
    }

    // 4 rows x 16 columns of int32: per depth quad, two 32-byte loads of B (8 columns x 4 bytes each) and four
    // broadcasts of A's 4 bytes; eight vpdpbusd add 4 products each into every lane.
    private static void MicroKernelVnni4x16(int quads, int* a, byte* b, int* tile, int ld)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int q = 0; q < quads; q++)
        {
            Vector256<byte> b0 = Avx.LoadVector256(b);
            Vector256<byte> b1 = Avx.LoadVector256(b + 32);
            Vector256<sbyte> a0 = Vector256.Create(a[0]).AsSByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, b0, a0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, b1, a0);
            Vector256<sbyte> a1 = Vector256.Create(a[1]).AsSByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, b0, a1);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, b1, a1);
            Vector256<sbyte> a2 = Vector256.Create(a[2]).AsSByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, b0, a2);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, b1, a2);
            Vector256<sbyte> a3 = Vector256.Create(a[3]).AsSByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, b0, a3);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, b1, a3);
            a += RowBlock;
            b += 4 * PanelWidth;
        }
        Store(tile, ld, c00, c01, c10, c11, c20, c21, c30, c31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(int* tile, int ld, Vector256<int> c00, Vector256<int> c01, Vector256<int> c10, Vector256<int> c11,
        Vector256<int> c20, Vector256<int> c21, Vector256<int> c30, Vector256<int> c31)
    {
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01);
        Avx.Store(tile + ld, c10); Avx.Store(tile + ld + 8, c11);
        Avx.Store(tile + 2 * ld, c20); Avx.Store(tile + 2 * ld + 8, c21);
        Avx.Store(tile + 3 * ld, c30); Avx.Store(tile + 3 * ld + 8, c31);
    }

    private static void CheckDimensions(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(m), $"int8 GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        }
    }

    private static void CheckPacked(int length, int needed)
    {
        if (length < needed)
        {
            throw new ArgumentException($"int8 GEMM: packed B needs {needed} bytes, got {length}.");
        }
    }

    private static void Check(string name, int rows, int cols, int length, int ld)
    {
        if (rows == 0 || cols == 0)
        {
            return;
        }
        if (ld < cols || (long)(rows - 1) * ld + cols > length)
        {
            throw new ArgumentException($"int8 GEMM matrix {name}: {rows} x {cols} with leading dimension {ld} does not fit a span of {length}.");
        }
    }
}
