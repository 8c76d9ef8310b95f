using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Kernels;

/// <summary>
/// <see cref="GemmS8U8"/> with 4-bit weights: C[m x n] = A[m x k] B[k x n] in int32, exactly, where A holds codes in
/// [-8, 7] kept packed eight to an int32 (half the bytes of int8 codes, a quarter of the int16 pairs the AVX2 int8 path
/// holds) and unpacked in registers on every call. B is the uint8 operand packed by <see cref="GemmS8U8.PackActivations"/>
/// (or its transposed and convolution twins) for the same variant, unchanged.
/// <code>
///   packed A (int32)  [row block of 4][octet q][row r] = the 8 codes A[r, 8q .. 8q + 7]   (0 past k)
///     pairs (Scalar, Avx2Fma; B groups of 2): int16 half e holds the codes 8q + 2j + e, j = 0..3, in its nibble 3 - j
///     quads (AvxVnni; B groups of 4):        byte e holds code 8q + e in its high nibble, code 8q + 4 + e in its low one
/// </code>
/// Unpacking is two integer operations per B group for the four rows of a block, then an in-lane dword shuffle per row:
/// <list type="bullet">
/// <item>pairs: shift the 16-bit lanes left by 4 j, then arithmetic right by 12: the nibble's top bit becomes the int16
/// sign, so each half is the code itself, sign-extended; vpmaddwd then runs as in <see cref="GemmS8U8"/>.</item>
/// <item>quads: mask the high nibbles (then shift the dword left by 4 for the low ones): each byte is 16 x code as a
/// two's complement int8 (16 x -8 = -128 still fits), so vpdpbusd accumulates 16 x the product, and one arithmetic
/// shift right by 4 at the end returns the exact sum (16 x 8 x 255 k, the same bound as 128 x 255 k for int8 codes: no
/// new overflow).</item>
/// </list>
/// Every variant equals the three-loop scalar reference (<see cref="GemmS8U8.Multiply"/> with Scalar) bit for bit.
/// </summary>
internal static unsafe class GemmS4U8
{
    /// <summary>Bits of each weight code.</summary>
    public const int CodeBits = 4;

    /// <summary>Depth steps per packed int32 of A.</summary>
    public const int CodesPerInt = 8;

    /// <summary>The smallest and largest code a nibble holds (two's complement).</summary>
    public const int MinCode = -8, MaxCode = 7;

    /// <summary>Packed int32s of A per row: ceil(k / 8).</summary>
    public static int Octets(int k) => (k + CodesPerInt - 1) / CodesPerInt;

    /// <summary>int32 elements <see cref="PackWeights"/> writes for an m x k matrix (any variant).</summary>
    public static int PackedWeightsLength(int m, int k) => (m + GemmS8U8.RowBlock - 1) / GemmS8U8.RowBlock * GemmS8U8.RowBlock * Octets(k);

    /// <summary>Packs 4-bit codes A[m x k] (one per sbyte, in [-8, 7]) eight to an int32 in the order of <paramref name="variant"/>.</summary>
    public static void PackWeights(int m, int k, ReadOnlySpan<sbyte> a, int lda, Span<int> packed, KernelVariant variant)
    {
        if (m < 0 || k < 0 || (m > 0 && k > 0 && (lda < k || (long)(m - 1) * lda + k > a.Length)))
        {
            throw new ArgumentException($"int4 GEMM: A of {m} x {k} with leading dimension {lda} does not fit a span of {a.Length}.");
        }
        int octets = Octets(k), length = PackedWeightsLength(m, k);
        if (packed.Length < length)
        {
            throw new ArgumentException($"int4 GEMM: packed A needs {length} elements, got {packed.Length}.");
        }
        packed[..length].Clear();
        bool quads = GemmS8U8.GroupSize(variant) == 4;
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<sbyte> row = a.Slice(i * lda, k);
            int blockBase = i / GemmS8U8.RowBlock * octets * GemmS8U8.RowBlock + i % GemmS8U8.RowBlock;
            for (int p = 0; p < k; p++)
            {
                int code = row[p];
                if (code < MinCode || code > MaxCode)
                {
                    throw new ArgumentException($"int4 GEMM: A[{i}, {p}] = {code} is outside [{MinCode}, {MaxCode}].");
                }
                int q = p / CodesPerInt, d = p % CodesPerInt;
                int shift = quads
                    ? 8 * (d & 3) + (d < 4 ? 4 : 0)          // byte d mod 4: high nibble for d < 4, low for d >= 4
                    : 16 * (d & 1) + 4 * (3 - (d >> 1));     // half d mod 2, nibble 3 - pair
                packed[blockBase + q * GemmS8U8.RowBlock] |= (code & 0xF) << shift;
            }
        }
    }

    /// <summary>
    /// C[m x n] = A B with A packed by <see cref="PackWeights"/> and B by <see cref="GemmS8U8.PackActivations"/>, both for
    /// <paramref name="variant"/>; no allocation.
    /// </summary>
    public static void MultiplyPacked(int m, int n, int k, ReadOnlySpan<int> packedA, ReadOnlySpan<byte> packedB,
        Span<int> c, int ldc, KernelVariant variant)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(m), $"int4 GEMM dimensions must be non-negative, got m={m}, n={n}, k={k}.");
        }
        if (m > 0 && n > 0 && (ldc < n || (long)(m - 1) * ldc + n > c.Length))
        {
            throw new ArgumentException($"int4 GEMM matrix C: {m} x {n} with leading dimension {ldc} does not fit a span of {c.Length}.");
        }
        if (packedA.Length < PackedWeightsLength(m, k) || packedB.Length < GemmS8U8.PackedActivationsLength(k, n, variant))
        {
            throw new ArgumentException($"int4 GEMM: packed operands of {packedA.Length} and {packedB.Length} do not fit m={m}, n={n}, k={k}.");
        }
        if ((variant == KernelVariant.Avx2Fma && !Avx2.IsSupported) || (variant == KernelVariant.AvxVnni && !AvxVnni.IsSupported)
            || variant == KernelVariant.Vector)
        {
            throw new PlatformNotSupportedException($"int4 GEMM variant {variant} is not supported on this CPU.");
        }
        if (m == 0 || n == 0)
        {
            return;
        }
        const int RowBlock = GemmS8U8.RowBlock, PanelWidth = GemmS8U8.PanelWidth;
        int groups = GemmS8U8.DepthGroups(k, variant), octets = Octets(k), panelLength = GemmS8U8.PanelLength(k, variant);
        Span<int> tile = stackalloc int[RowBlock * PanelWidth];
        fixed (int* pa = packedA, pt = tile, pc = c)
        fixed (byte* pb = packedB)
        {
            // Panel outer, row block inner, as GemmS8U8: a panel of B stays in L1 while every row block of A meets it.
            for (int panel = 0, j0 = 0; j0 < n; panel++, j0 += PanelWidth)
            {
                int cols = Math.Min(PanelWidth, n - j0);
                for (int i0 = 0; i0 < m; i0 += RowBlock)
                {
                    int rows = Math.Min(RowBlock, m - i0);
                    int* a = pa + i0 / RowBlock * octets * RowBlock;
                    byte* b = pb + (long)panel * panelLength;
                    bool whole = rows == RowBlock && cols == PanelWidth;
                    int* destination = whole ? pc + (long)i0 * ldc + j0 : pt;
                    int ld = whole ? ldc : PanelWidth;
                    Tile(groups, a, b, destination, ld, variant);
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
    /// C = A B from unpacked operands (A codes in [-8, 7]); packs into temporary arrays and runs
    /// <see cref="MultiplyPacked"/> (for tests and tools, not the inference path).
    /// </summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<byte> b, int ldb,
        Span<int> c, int ldc, KernelVariant variant)
    {
        int[] packedA = new int[PackedWeightsLength(m, k)];
        byte[] packedB = new byte[GemmS8U8.PackedActivationsLength(k, n, variant)];
        if (m > 0 && n > 0 && k > 0)
        {
            PackWeights(m, k, a, lda, packedA, variant);
            GemmS8U8.PackActivations(k, n, b, ldb, packedB, variant);
        }
        MultiplyPacked(m, n, k, packedA, packedB, c, ldc, variant);
    }

    /// <summary>
    /// One 4 x 16 tile, tile[r * ld + t], from row block <paramref name="a"/> (nibble panels) and panel b (
    /// <paramref name="groups"/> depth groups of <paramref name="variant"/>): <see cref="GemmS8U8.Tile"/> for 4-bit weights,
    /// for kernels that consume a tile while it is in L1 (<see cref="PooledGemmQ8"/>).
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
                PortableTile(groups, a, b, tile, ld);
                break;
        }
    }

    // The pair layout read with plain loops: what the AVX2 kernel computes, for CPUs without it.
    private static void PortableTile(int pairs, int* a, byte* b, int* tile, int ld)
    {
        const int RowBlock = GemmS8U8.RowBlock, PanelWidth = GemmS8U8.PanelWidth;
        Span<int> sums = stackalloc int[RowBlock * PanelWidth];
        for (int q = 0; q < pairs; q++, b += 2 * PanelWidth)
        {
            int j = q & 3;
            for (int r = 0; r < RowBlock; r++)
            {
                int x = a[q / 4 * RowBlock + r];
                int lo = Nibble(x >> (4 * (3 - j))), hi = Nibble(x >> (16 + 4 * (3 - j)));
                for (int t = 0; t < PanelWidth; t++)
                {
                    int offset = GemmS8U8.ByteOffset(t, 2);
                    sums[r * PanelWidth + t] += lo * b[offset] + hi * b[offset + 1];
                }
            }
        }
        for (int r = 0; r < RowBlock; r++)
        {
            sums.Slice(r * PanelWidth, PanelWidth).CopyTo(new Span<int>(tile + r * ld, PanelWidth));
        }
    }

    // The low 4 bits of x as a two's complement code: (n xor 8) - 8.
    private static int Nibble(int x) => ((x & 0xF) ^ 8) - 8;

    // 4 rows x 16 columns, pair layout: per octet one 16-byte load of the four rows' int32 (broadcast to both 128-bit
    // lanes); per depth pair j, vpsllw by 4 (after the first) and vpsraw by 12 turn nibble 3 - j of every int16 half into
    // the int16 code, vpshufd broadcasts each row's pair, and eight vpmaddwd accumulate as in GemmS8U8.
    private static void MicroKernel4x16(int pairs, int* a, byte* b, int* tile, int ld)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<short> codes = default;
        for (int q = 0; q < pairs; q++)
        {
            if ((q & 3) == 0)
            {
                codes = Avx2.BroadcastVector128ToVector256((short*)a);
                a += GemmS8U8.RowBlock;
            }
            else
            {
                codes = Avx2.ShiftLeftLogical(codes, 4);
            }
            Vector256<int> pair = Avx2.ShiftRightArithmetic(codes, 12).AsInt32();
            Vector256<short> b0 = Avx2.ConvertToVector256Int16(b);
            Vector256<short> b1 = Avx2.ConvertToVector256Int16(b + 16);
            Vector256<short> a0 = Avx2.Shuffle(pair, 0x00).AsInt16();
            c00 = Avx2.Add(c00, Avx2.MultiplyAddAdjacent(a0, b0));
            c01 = Avx2.Add(c01, Avx2.MultiplyAddAdjacent(a0, b1));
            Vector256<short> a1 = Avx2.Shuffle(pair, 0x55).AsInt16();
            c10 = Avx2.Add(c10, Avx2.MultiplyAddAdjacent(a1, b0));
            c11 = Avx2.Add(c11, Avx2.MultiplyAddAdjacent(a1, b1));
            Vector256<short> a2 = Avx2.Shuffle(pair, 0xAA).AsInt16();
            c20 = Avx2.Add(c20, Avx2.MultiplyAddAdjacent(a2, b0));
            c21 = Avx2.Add(c21, Avx2.MultiplyAddAdjacent(a2, b1));
            Vector256<short> a3 = Avx2.Shuffle(pair, 0xFF).AsInt16();
            c30 = Avx2.Add(c30, Avx2.MultiplyAddAdjacent(a3, b0));
            c31 = Avx2.Add(c31, Avx2.MultiplyAddAdjacent(a3, b1));
            b += 2 * GemmS8U8.PanelWidth;
        }
        Store(tile, ld, c00, c01, c10, c11, c20, c21, c30, c31, sixteenTimes: false);
    }

    // 4 rows x 16 columns, quad layout: per octet one 16-byte load (both lanes); the first quad is the high nibbles
    // (mask), the second the low ones (dword shift left by 4, then mask), each byte 16 x code; vpshufd broadcasts each
    // row's quad and eight vpdpbusd accumulate; the sums are 16 x the product, shifted back exactly at the end.
    private static void MicroKernelVnni4x16(int quads, int* a, byte* b, int* tile, int ld)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<int> codes = default, highNibbles = Vector256.Create(unchecked((int)0xF0F0F0F0));
        for (int q = 0; q < quads; q++)
        {
            if ((q & 1) == 0)
            {
                codes = Avx2.BroadcastVector128ToVector256(a);
                a += GemmS8U8.RowBlock;
            }
            else
            {
                codes = Avx2.ShiftLeftLogical(codes, 4);
            }
            Vector256<int> quad = Avx2.And(codes, highNibbles);
            Vector256<byte> b0 = Avx.LoadVector256(b);
            Vector256<byte> b1 = Avx.LoadVector256(b + 32);
            Vector256<sbyte> a0 = Avx2.Shuffle(quad, 0x00).AsSByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, b0, a0);
            c01 = AvxVnni.MultiplyWideningAndAdd(c01, b1, a0);
            Vector256<sbyte> a1 = Avx2.Shuffle(quad, 0x55).AsSByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, b0, a1);
            c11 = AvxVnni.MultiplyWideningAndAdd(c11, b1, a1);
            Vector256<sbyte> a2 = Avx2.Shuffle(quad, 0xAA).AsSByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, b0, a2);
            c21 = AvxVnni.MultiplyWideningAndAdd(c21, b1, a2);
            Vector256<sbyte> a3 = Avx2.Shuffle(quad, 0xFF).AsSByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, b0, a3);
            c31 = AvxVnni.MultiplyWideningAndAdd(c31, b1, a3);
            b += 4 * GemmS8U8.PanelWidth;
        }
        Store(tile, ld, c00, c01, c10, c11, c20, c21, c30, c31, sixteenTimes: true);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(int* tile, int ld, Vector256<int> c00, Vector256<int> c01, Vector256<int> c10, Vector256<int> c11,
        Vector256<int> c20, Vector256<int> c21, Vector256<int> c30, Vector256<int> c31, bool sixteenTimes)
    {
        if (sixteenTimes)
        {
            c00 = Avx2.ShiftRightArithmetic(c00, 4); c01 = Avx2.ShiftRightArithmetic(c01, 4);
            c10 = Avx2.ShiftRightArithmetic(c10, 4); c11 = Avx2.ShiftRightArithmetic(c11, 4);
            c20 = Avx2.ShiftRightArithmetic(c20, 4); c21 = Avx2.ShiftRightArithmetic(c21, 4);
            c30 = Avx2.ShiftRightArithmetic(c30, 4); c31 = Avx2.ShiftRightArithmetic(c31, 4);
        }
        Avx.Store(tile, c00); Avx.Store(tile + 8, c01);
        Avx.Store(tile + ld, c10); Avx.Store(tile + ld + 8, c11);
        Avx.Store(tile + 2 * ld, c20); Avx.Store(tile + 2 * ld + 8, c21);
        Avx.Store(tile + 3 * ld, c30); Avx.Store(tile + 3 * ld + 8, c31);
    }
}
