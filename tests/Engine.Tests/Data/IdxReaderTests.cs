using Engine.Data;

namespace Engine.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly TempIdxDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly byte[] TinyImages = [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]; // 2 x 2 x 3

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Images_round_trip_raw_and_gzipped(bool gzip)
    {
        byte[] raw = TempIdxDirectory.Build(TinyImages, 2, 2, 3);
        string path = _dir.Write("tiny-images", gzip ? TempIdxDirectory.Gzip(raw) : raw);

        IdxArray array = IdxReader.Read(path, 3);

        Assert.Equal(path, array.Path);
        Assert.Equal([2, 2, 3], array.Dimensions);
        Assert.Equal(TinyImages, array.Data);
    }

    [Fact]
    public void Labels_round_trip()
    {
        string path = _dir.Write("labels.gz", TempIdxDirectory.Gzip(TempIdxDirectory.Build([7, 0, 9], 3)));

        IdxArray array = IdxReader.Read(path, 1);

        Assert.Equal([3], array.Dimensions);
        Assert.Equal([7, 0, 9], array.Data);
    }

    [Fact]
    public void Compression_is_detected_from_the_bytes_not_the_name()
    {
        byte[] raw = TempIdxDirectory.Build(TinyImages, 2, 2, 3);
        string rawNamedGz = _dir.Write("raw.gz", raw);
        string gzipNamedRaw = _dir.Write("gzip-idx3-ubyte", TempIdxDirectory.Gzip(raw));

        Assert.Equal(TinyImages, IdxReader.Read(rawNamedGz, 3).Data);
        Assert.Equal(TinyImages, IdxReader.Read(gzipNamedRaw, 3).Data);
    }

    private InvalidDataException ReadFails(string name, byte[] bytes, int expectedDimensionCount, bool gzip = false)
    {
        string path = _dir.Write(name, gzip ? TempIdxDirectory.Gzip(bytes) : bytes);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path, expectedDimensionCount));
        Assert.StartsWith(path + ": ", e.Message);
        return e;
    }

    [Fact]
    public void Bad_magic_is_rejected()
    {
        var e = ReadFails("bad-magic", TempIdxDirectory.BuildWithMagic(0x12340803, TinyImages, 2, 2, 3), 3);
        Assert.Contains("magic number 0x12340803, expected 0x00000803", e.Message);
    }

    [Fact]
    public void Element_type_other_than_unsigned_byte_is_rejected()
    {
        var e = ReadFails("floats", TempIdxDirectory.BuildWithMagic(0x00000D03, TinyImages, 2, 2, 3), 3);
        Assert.Contains("element type 0x0D (float32)", e.Message);
        Assert.Contains("expected 0x08 (unsigned byte)", e.Message);
    }

    [Fact]
    public void Wrong_dimension_count_is_rejected()
    {
        // A labels file where an images file is expected.
        var e = ReadFails("labels-as-images", TempIdxDirectory.Build([1, 2, 3], 3), 3);
        Assert.Contains("1 dimension in magic number 0x00000801, expected 3 (magic 0x00000803)", e.Message);
    }

    [Theory]
    [InlineData(0, "only 0 bytes")]
    [InlineData(3, "only 3 bytes")]
    public void File_shorter_than_the_magic_is_rejected(int length, string found)
    {
        byte[] bytes = TempIdxDirectory.Build(TinyImages, 2, 2, 3)[..length];
        var e = ReadFails("short-magic", bytes, 3);
        Assert.Contains("truncated header", e.Message);
        Assert.Contains(found, e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_dimensions_are_rejected(bool gzip)
    {
        byte[] bytes = TempIdxDirectory.Build(TinyImages, 2, 2, 3)[..10];
        var e = ReadFails("short-header", bytes, 3, gzip);
        Assert.Contains("truncated header: 3 dimensions need a 16-byte header but the file ends after 10 bytes", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_payload_is_rejected(bool gzip)
    {
        byte[] bytes = TempIdxDirectory.Build(TinyImages, 2, 2, 3)[..^7];
        var e = ReadFails("short-payload", bytes, 3, gzip);
        Assert.Contains("truncated: header promises 2 x 2 x 3 = 12 bytes but only 5 follow", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Trailing_bytes_are_rejected(bool gzip)
    {
        byte[] bytes = [.. TempIdxDirectory.Build(TinyImages, 2, 2, 3), 42, 43];
        var e = ReadFails("trailing", bytes, 3, gzip);
        Assert.Contains("trailing bytes: header promises 2 x 2 x 3 = 12 bytes but 14 follow (2 extra)", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void Non_positive_dimension_is_rejected(int size)
    {
        var e = ReadFails("zero-dim", TempIdxDirectory.Build([], 2, size, 3), 3);
        Assert.Contains($"dimension 1 has size {size}, expected a positive size", e.Message);
    }

    [Theory]
    [InlineData(100_000, 1_000, 1_001)]
    [InlineData(int.MaxValue, int.MaxValue, int.MaxValue)] // the product overflows 64 bits
    public void Payload_above_the_cap_is_rejected_before_allocating(int n, int rows, int cols)
    {
        // The file holds no payload at all: had the reader trusted the header, it would have tried to
        // allocate the promised size before noticing.
        var e = ReadFails("huge", TempIdxDirectory.Build([], n, rows, cols), 3);
        Assert.Contains($"header promises {n} x {rows} x {cols} bytes, more than the 100,000,000-byte limit", e.Message);
    }

    [Fact]
    public void Corrupt_gzip_data_names_the_file()
    {
        byte[] gzip = TempIdxDirectory.Gzip(TempIdxDirectory.Build(TinyImages, 2, 2, 3));
        // Keep the gzip magic and header, scramble the deflate data.
        for (int i = 10; i < gzip.Length; i++)
        {
            gzip[i] = 0xFF;
        }
        var e = ReadFails("corrupt.gz", gzip, 3);
        Assert.Contains("corrupt gzip data", e.Message);
    }

    [Theory]
    [InlineData(8)] // first byte of the CRC-32
    [InlineData(4)] // first byte of the uncompressed length
    public void Gzip_trailer_mismatch_is_corrupt_data(int fromEnd)
    {
        byte[] gzip = TempIdxDirectory.Gzip(TempIdxDirectory.Build(TinyImages, 2, 2, 3));
        gzip[^fromEnd] ^= 0x55;
        var e = ReadFails("bad-trailer.gz", gzip, 3);
        Assert.Contains("corrupt gzip data", e.Message);
    }

    [Fact]
    public void Cut_off_gzip_stream_names_the_file()
    {
        var payload = new byte[28 * 28 * 4];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(i * 37 % 251);
        }
        byte[] gzip = TempIdxDirectory.Gzip(TempIdxDirectory.Build(payload, 4, 28, 28));
        var e = ReadFails("cut.gz", gzip[..(gzip.Length / 2)], 3);
        Assert.Matches("truncated|corrupt gzip data", e.Message);
    }

    [Fact]
    public void Missing_file_throws_FileNotFoundException()
    {
        string path = Path.Combine(_dir.Path, "absent-idx3-ubyte");
        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.Read(path, 3));
        Assert.Contains(path, e.Message);
    }
}
