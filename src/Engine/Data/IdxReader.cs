using System.Buffers.Binary;
using System.IO.Compression;

namespace Engine.Data;

/// <summary>
/// An array read from an IDX file: its dimension sizes and its unsigned bytes in row-major order
/// (the last dimension varies fastest), so element (i, j, k) of a 3-D array is
/// <c>Data[(i * Dimensions[1] + j) * Dimensions[2] + k]</c>.
/// </summary>
public sealed class IdxArray
{
    internal IdxArray(string path, int[] dimensions, byte[] data)
    {
        Path = path;
        Dimensions = dimensions;
        Data = data;
    }

    /// <summary>The file the array was read from, as given to <see cref="IdxReader.Read"/>.</summary>
    public string Path { get; }

    /// <summary>Dimension sizes in file order, each positive; their product is <c>Data.Length</c>.</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>The elements, one unsigned byte each, row-major.</summary>
    public byte[] Data { get; }
}

/// <summary>
/// Reads IDX files, the format of the MNIST distribution (LeCun, Cortes and Burges,
/// http://yann.lecun.com/exdb/mnist/): a big-endian int32 magic number <c>0x0000TTDD</c> (two zero bytes,
/// element type <c>TT</c>, dimension count <c>DD</c>), then <c>DD</c> big-endian int32 dimension sizes,
/// then the elements. Only unsigned-byte elements (<c>TT = 0x08</c>) are accepted, which is what MNIST
/// uses: <c>0x00000803</c> for images (count x rows x cols) and <c>0x00000801</c> for labels (count).
/// </summary>
/// <remarks>
/// Files may be gzip-compressed or raw; compression is detected from the gzip magic bytes
/// <c>1f 8b</c>, not from the file name, because renamed or decompressed-in-place files are common.
/// The header is validated before the payload is allocated, and the payload must be exactly as long as
/// the header promises. For gzip files the decompressor also checks the CRC-32 and length in the gzip
/// trailer; it ignores bytes after the gzip stream and a trailer cut off after a complete payload. Every
/// error is an <see cref="InvalidDataException"/> whose message starts with the file path and states what
/// was expected and what was found.
/// </remarks>
public static class IdxReader
{
    /// <summary>The IDX element type code for unsigned bytes, the third byte of the magic number.</summary>
    public const byte UnsignedByteType = 0x08;

    /// <summary>
    /// The largest payload accepted, in bytes (100 million: the full 60,000-image MNIST training set is
    /// 47 million). A header promising more is rejected before anything is allocated, so a corrupt or
    /// hostile header cannot make the reader reserve gigabytes.
    /// </summary>
    public const long MaxPayloadBytes = 100_000_000;

    // Bytes of trailing data counted after a gzip payload before giving up counting: enough for a
    // useful message, bounded so that a large appended blob is not decompressed just to be measured.
    private const int TrailingCountLimit = 1 << 20;

    // First buffer for a gzip payload; it doubles as decompressed data arrives, never past the promised length.
    private const int InitialGzipBuffer = 1 << 16;

    /// <summary>
    /// Reads the IDX file at <paramref name="path"/>, which must hold unsigned bytes in
    /// <paramref name="expectedDimensionCount"/> dimensions (3 for MNIST images, 1 for labels).
    /// </summary>
    /// <param name="path">The file, gzip-compressed or raw.</param>
    /// <param name="expectedDimensionCount">The number of dimensions the magic number must declare, 1 to 255.</param>
    /// <returns>The dimensions and the payload.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The magic number, element type or dimension count differs from what is expected; a dimension is
    /// not positive; the payload would exceed <see cref="MaxPayloadBytes"/>; the header or payload is
    /// truncated; bytes follow the payload; or the gzip data is corrupt.
    /// </exception>
    public static IdxArray Read(string path, int expectedDimensionCount)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedDimensionCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(expectedDimensionCount, 255);

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return ReadStream(file, path, expectedDimensionCount);
    }

    // As Read(path, ...) for a seekable stream holding the whole file; path names it in errors.
    internal static IdxArray ReadStream(Stream file, string path, int expectedDimensionCount)
    {
        Span<byte> gzipMagic = stackalloc byte[2];
        int magicLength = file.ReadAtLeast(gzipMagic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        if (magicLength == 2 && gzipMagic[0] == 0x1f && gzipMagic[1] == 0x8b)
        {
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            return ReadIdx(gzip, path, expectedDimensionCount, knownLength: null);
        }
        return ReadIdx(file, path, expectedDimensionCount, knownLength: file.Length);
    }

    // knownLength is the byte count of an uncompressed file: with it, length errors are found before the
    // payload is allocated. A gzip stream's decompressed length is only known by decompressing it, so
    // there the payload buffer grows as data actually arrives (doubling from 64 KiB up to the promised
    // length), and a header that promises more than the stream holds costs at most twice what it holds.
    private static IdxArray ReadIdx(Stream stream, string path, int expectedDimensionCount, long? knownLength)
    {
        uint expectedMagic = (uint)(UnsignedByteType << 8 | expectedDimensionCount);

        Span<byte> magicBytes = stackalloc byte[4];
        int got = ReadFully(stream, magicBytes, path);
        if (got < 4)
        {
            throw Invalid(path, $"truncated header: expected a 4-byte magic number (0x{expectedMagic:X8}) " +
                $"but the file holds only {got} byte{Plural(got)}");
        }
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(magicBytes);
        if (magicBytes[0] != 0 || magicBytes[1] != 0)
        {
            throw Invalid(path, $"not an IDX file: magic number 0x{magic:X8}, expected 0x{expectedMagic:X8} " +
                "(an IDX magic number starts with two zero bytes)");
        }
        if (magicBytes[2] != UnsignedByteType)
        {
            throw Invalid(path, $"element type 0x{magicBytes[2]:X2} ({TypeName(magicBytes[2])}) in magic number " +
                $"0x{magic:X8}, expected 0x{UnsignedByteType:X2} (unsigned byte), magic 0x{expectedMagic:X8}");
        }
        int dimensionCount = magicBytes[3];
        if (dimensionCount != expectedDimensionCount)
        {
            throw Invalid(path, $"{dimensionCount} dimension{Plural(dimensionCount)} in magic number 0x{magic:X8}, " +
                $"expected {expectedDimensionCount} (magic 0x{expectedMagic:X8})");
        }

        int headerLength = 4 + 4 * dimensionCount;
        Span<byte> dimensionBytes = stackalloc byte[4 * dimensionCount];
        got = ReadFully(stream, dimensionBytes, path);
        if (got < dimensionBytes.Length)
        {
            throw Invalid(path, $"truncated header: {dimensionCount} dimension{Plural(dimensionCount)} need a " +
                $"{headerLength}-byte header but the file ends after {4 + got} bytes");
        }

        var dimensions = new int[dimensionCount];
        long payloadLength = 1;
        for (int i = 0; i < dimensionCount; i++)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(dimensionBytes[(4 * i)..]);
            if (size <= 0)
            {
                throw Invalid(path, $"dimension {i} has size {size}, expected a positive size");
            }
            dimensions[i] = size;
        }
        for (int i = 0; i < dimensionCount; i++)
        {
            // Checked against the cap after every factor: payloadLength <= 1e8 and a size < 2^31 keep the
            // product below 2^58, so it can never overflow a long before the cap stops it.
            payloadLength *= dimensions[i];
            if (payloadLength > MaxPayloadBytes)
            {
                throw Invalid(path, $"header promises {string.Join(" x ", dimensions)} bytes, more than the " +
                    $"{MaxPayloadBytes:N0}-byte limit of this reader");
            }
        }

        string promise = $"header promises {Describe(dimensions, payloadLength)}";
        if (knownLength is long fileLength)
        {
            long available = fileLength - headerLength;
            if (available < payloadLength)
            {
                throw Invalid(path, $"truncated: {promise} but only {available} follow");
            }
            if (available > payloadLength)
            {
                throw Invalid(path, $"trailing bytes: {promise} but {available} follow " +
                    $"({available - payloadLength} extra)");
            }
        }

        byte[] payload;
        if (knownLength is not null)
        {
            payload = GC.AllocateUninitializedArray<byte>((int)payloadLength);
            got = ReadFully(stream, payload, path);
        }
        else
        {
            payload = GC.AllocateUninitializedArray<byte>((int)Math.Min(payloadLength, InitialGzipBuffer));
            got = 0;
            while (true)
            {
                if (got == payload.Length)
                {
                    if (got == payloadLength)
                    {
                        break;
                    }
                    Array.Resize(ref payload, (int)Math.Min(payloadLength, 2L * payload.Length));
                }
                int n = ReadFully(stream, payload.AsSpan(got), path);
                if (n == 0)
                {
                    break;
                }
                got += n;
            }
        }
        if (got < payloadLength)
        {
            throw Invalid(path, $"truncated: {promise} but only {got} follow");
        }

        Span<byte> scratch = stackalloc byte[4096];
        long extra = 0;
        int more;
        while (extra <= TrailingCountLimit && (more = ReadFully(stream, scratch, path)) > 0)
        {
            extra += more;
        }
        if (extra > TrailingCountLimit)
        {
            throw Invalid(path, $"trailing bytes: {promise} but more than {payloadLength + TrailingCountLimit} follow");
        }
        if (extra > 0)
        {
            throw Invalid(path, $"trailing bytes: {promise} but {payloadLength + extra} follow ({extra} extra)");
        }

        return new IdxArray(path, dimensions, payload);
    }

    // Reads until the buffer is full or the stream ends; returns the bytes read. The decompressor reports
    // corrupt data (bad deflate codes, CRC-32 or length mismatch) as InvalidDataException or IOException
    // without naming the file, so those are rethrown with the path. Errors of a raw file pass unchanged.
    private static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (stream is GZipStream && e is InvalidDataException or IOException)
        {
            throw new InvalidDataException($"{path}: corrupt gzip data; the decompressor reports: {e.Message}", e);
        }
    }

    private static string Describe(int[] dimensions, long payloadLength) =>
        dimensions.Length == 1
            ? $"{payloadLength} byte{Plural(payloadLength)}"
            : $"{string.Join(" x ", dimensions)} = {payloadLength} bytes";

    private static string TypeName(byte type) => type switch
    {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "unknown type",
    };

    private static string Plural(long count) => count == 1 ? "" : "s";

    private static InvalidDataException Invalid(string path, string message) => new($"{path}: {message}");
}
