using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Engine.IO;

/// <summary>Element types of the safetensors format (the JSON "dtype" strings are the member names).</summary>
public enum SafeTensorDType
{
    /// <summary>IEEE 754 binary64.</summary>
    F64,
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Boolean, one byte (spelled <c>BOOL</c> in the file, as the reference implementation writes it).</summary>
    Bool,
}

/// <summary>
/// One named tensor of a safetensors file: element type, shape and raw little-endian bytes
/// (row-major, as <c>torch.FloatTensor.numpy().tobytes()</c>).
/// </summary>
public sealed class SafeTensor
{
    private SafeTensor(string name, SafeTensorDType dtype, int[] shape, byte[] data)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
    }

    /// <summary>The tensor's key in the header, for example "conv1.weight".</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    public int[] Shape { get; }

    /// <summary>The raw little-endian bytes: ElementCount x the element size.</summary>
    public byte[] Data { get; }

    /// <summary>The product of the dimensions (1 for a scalar).</summary>
    public long ElementCount => Count(Shape);

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.I16 => 2,
        _ => 1,
    };

    /// <summary>A tensor of raw bytes; their count must be ElementCount x <see cref="ElementSize"/>.</summary>
    public static SafeTensor FromRaw(string name, SafeTensorDType dtype, int[] shape, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        int[] copy = (int[])shape.Clone();
        if (copy.Any(d => d < 0))
        {
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", copy)}] has a negative dimension.");
        }
        long expected = Count(copy) * ElementSize(dtype);
        if (bytes.Length != expected)
        {
            throw new ArgumentException($"tensor '{name}': {bytes.Length} bytes given, {dtype} [{string.Join(", ", copy)}] needs {expected}.");
        }
        return new SafeTensor(name, dtype, copy, bytes.ToArray());
    }

    /// <summary>An F32 tensor.</summary>
    public static SafeTensor FromFloats(string name, int[] shape, ReadOnlySpan<float> values) =>
        FromRaw(name, SafeTensorDType.F32, shape, AsLittleEndianBytes(values));

    /// <summary>An F64 tensor.</summary>
    public static SafeTensor FromDoubles(string name, int[] shape, ReadOnlySpan<double> values) =>
        FromRaw(name, SafeTensorDType.F64, shape, AsLittleEndianBytes(values));

    /// <summary>An I8 tensor.</summary>
    public static SafeTensor FromSBytes(string name, int[] shape, ReadOnlySpan<sbyte> values) =>
        FromRaw(name, SafeTensorDType.I8, shape, MemoryMarshal.AsBytes(values));

    /// <summary>A U8 tensor.</summary>
    public static SafeTensor FromBytes(string name, int[] shape, ReadOnlySpan<byte> values) =>
        FromRaw(name, SafeTensorDType.U8, shape, values);

    /// <summary>An I32 tensor.</summary>
    public static SafeTensor FromInt32s(string name, int[] shape, ReadOnlySpan<int> values) =>
        FromRaw(name, SafeTensorDType.I32, shape, AsLittleEndianBytes(values));

    /// <summary>An I64 tensor.</summary>
    public static SafeTensor FromInt64s(string name, int[] shape, ReadOnlySpan<long> values) =>
        FromRaw(name, SafeTensorDType.I64, shape, AsLittleEndianBytes(values));

    /// <summary>The elements of an F32 tensor.</summary>
    public float[] ToFloats() => As<float>(SafeTensorDType.F32);

    /// <summary>The elements of an F64 tensor.</summary>
    public double[] ToDoubles() => As<double>(SafeTensorDType.F64);

    /// <summary>The elements of an I8 tensor.</summary>
    public sbyte[] ToSBytes() => As<sbyte>(SafeTensorDType.I8);

    /// <summary>The elements of a U8 tensor.</summary>
    public byte[] ToBytes() => As<byte>(SafeTensorDType.U8);

    /// <summary>The elements of an I32 tensor.</summary>
    public int[] ToInt32s() => As<int>(SafeTensorDType.I32);

    /// <summary>The elements of an I64 tensor.</summary>
    public long[] ToInt64s() => As<long>(SafeTensorDType.I64);

    private T[] As<T>(SafeTensorDType expected) where T : unmanaged
    {
        if (DType != expected)
        {
            throw new InvalidDataException($"tensor '{Name}' is {DType}, expected {expected}.");
        }
        RequireLittleEndian();
        return MemoryMarshal.Cast<byte, T>(Data).ToArray();
    }

    private static ReadOnlySpan<byte> AsLittleEndianBytes<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        RequireLittleEndian();
        return MemoryMarshal.AsBytes(values);
    }

    private static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("safetensors I/O is implemented for little-endian machines only.");
        }
    }

    internal static long Count(int[] shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            count *= d;
        }
        return count;
    }
}

/// <summary>
/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
/// UTF-8 JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data
/// section that follows) plus an optional "__metadata__" map of strings, then the raw little-endian data.
/// <para>
/// Writing follows what PyTorch's <c>safetensors.torch.load_file</c> requires: data contiguous in the order given,
/// starting at offset 0, and the header padded with spaces to a multiple of 8 bytes. Reading validates everything before
/// it allocates: header size, JSON shape, dtypes, shapes, offsets inside the file and agreeing with the byte counts,
/// and the data section covered exactly, without overlaps or holes (as the reference implementation demands);
/// every failure is an <see cref="InvalidDataException"/> whose message names the file and the tensor.
/// </para>
/// </summary>
public sealed class SafeTensorsFile
{
    /// <summary>Largest header accepted, as in the reference implementation.</summary>
    public const int MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private readonly List<SafeTensor> _tensors;
    private readonly Dictionary<string, SafeTensor> _byName;
    private readonly Dictionary<string, string> _metadata;

    /// <summary>A file of the given tensors (written in this order) and metadata; names must be unique.</summary>
    public SafeTensorsFile(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, string? sourceName = null)
    {
        _tensors = [.. tensors];
        _byName = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
        SourceName = sourceName ?? "safetensors";
        foreach (SafeTensor t in _tensors)
        {
            if (t.Name == MetadataKey || !_byName.TryAdd(t.Name, t))
            {
                throw new ArgumentException($"{SourceName}: tensor name '{t.Name}' is reserved or used twice.");
            }
        }
        _metadata = metadata is null ? new(StringComparer.Ordinal) : new(metadata, StringComparer.Ordinal);
    }

    /// <summary>The file name used in error messages.</summary>
    public string SourceName { get; }

    /// <summary>The "__metadata__" string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>The tensors, in file order.</summary>
    public IReadOnlyList<SafeTensor> Tensors => _tensors;

    /// <summary>The tensor called <paramref name="name"/>; throws naming the file and tensor when absent.</summary>
    public SafeTensor this[string name] => _byName.TryGetValue(name, out SafeTensor? t)
        ? t
        : throw new InvalidDataException($"{SourceName}: tensor '{name}' is missing.");

    /// <summary>Looks up a tensor by name.</summary>
    public bool TryGet(string name, out SafeTensor tensor)
    {
        bool found = _byName.TryGetValue(name, out SafeTensor? t);
        tensor = t!;
        return found;
    }

    /// <summary>Reads and validates the file at <paramref name="path"/>.</summary>
    public static SafeTensorsFile Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Read(stream, Path.GetFileName(path));
    }

    /// <summary>
    /// Reads and validates a safetensors file from a seekable <paramref name="stream"/>, from its current position to its
    /// end; <paramref name="source"/> names it in errors.
    /// </summary>
    public static SafeTensorsFile Read(Stream stream, string source)
    {
        long origin = stream.Position;
        (List<Entry> entries, Dictionary<string, string> metadata, int headerLength) = ReadHeader(stream, source);
        var tensors = new List<SafeTensor>(entries.Count);
        long dataStart = 8 + headerLength;
        foreach (Entry e in entries.OrderBy(e => e.Index))
        {
            byte[] bytes = new byte[e.End - e.Begin];
            stream.Position = origin + dataStart + e.Begin;
            stream.ReadExactly(bytes);
            tensors.Add(SafeTensor.FromRaw(e.Name, e.DType, e.Shape, bytes));
        }
        return new SafeTensorsFile(tensors, metadata, source);
    }

    /// <summary>
    /// The <c>__metadata__</c> of the safetensors file that starts at the current position of the seekable
    /// <paramref name="stream"/>, reading and validating only its header (8 + header-length bytes, whose tensor entries
    /// are checked against the stream's length); the position is restored afterwards.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(Stream stream, string source)
    {
        long origin = stream.Position;
        try
        {
            return ReadHeader(stream, source).Metadata;
        }
        finally
        {
            stream.Position = origin;
        }
    }

    // Reads and validates the 8-byte length and the JSON header at the stream's position, checking the entries against
    // the bytes that follow; leaves the stream after the header.
    private static (List<Entry> Entries, Dictionary<string, string> Metadata, int HeaderLength) ReadHeader(Stream stream, string source)
    {
        long fileLength = stream.Length - stream.Position;
        if (fileLength < 8)
        {
            throw new InvalidDataException($"{source}: {fileLength} bytes is too short for a safetensors file (8-byte header length missing).");
        }
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        int headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(prefix), fileLength, source);
        byte[] header = new byte[headerLength];
        stream.ReadExactly(header);
        (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(header, fileLength - 8 - headerLength, source);
        return (entries, metadata, headerLength);
    }

    /// <summary>The <c>__metadata__</c> of safetensors <paramref name="bytes"/>, reading and validating only the header.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < 8)
        {
            throw new InvalidDataException($"{source}: {bytes.Length} bytes is too short for a safetensors file (8-byte header length missing).");
        }
        int headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(bytes), bytes.Length, source);
        return ParseHeader(bytes.Slice(8, headerLength), bytes.Length - 8 - headerLength, source).Item2;
    }

    /// <summary>Reads and validates safetensors bytes; <paramref name="sourceName"/> names them in errors.</summary>
    public static SafeTensorsFile Read(ReadOnlySpan<byte> bytes, string sourceName)
    {
        if (bytes.Length < 8)
        {
            throw new InvalidDataException($"{sourceName}: {bytes.Length} bytes is too short for a safetensors file (8-byte header length missing).");
        }
        int headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(bytes), bytes.Length, sourceName);
        ReadOnlySpan<byte> data = bytes[(8 + headerLength)..];
        (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(bytes.Slice(8, headerLength), data.Length, sourceName);
        var tensors = new List<SafeTensor>(entries.Count);
        foreach (Entry e in entries.OrderBy(e => e.Index))
        {
            tensors.Add(SafeTensor.FromRaw(e.Name, e.DType, e.Shape, data[(int)e.Begin..(int)e.End]));
        }
        return new SafeTensorsFile(tensors, metadata, sourceName);
    }

    /// <summary>The whole file as bytes.</summary>
    public byte[] ToBytes()
    {
        using var memory = new MemoryStream();
        WriteTo(memory);
        return memory.ToArray();
    }

    /// <summary>
    /// Writes the file atomically (<see cref="AtomicFile.Write(string, Action{Stream})"/>): to a temporary file
    /// <c>.NAME.GUID.tmp</c> in the same directory, flushed to disk, then renamed over <paramref name="path"/>. If anything
    /// fails, the temporary file is removed and a previous file at <paramref name="path"/> is left as it was.
    /// </summary>
    public void Write(string path) => AtomicFile.Write(path, WriteTo);


    private void WriteTo(Stream stream)
    {
        byte[] header = BuildHeader();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (SafeTensor t in _tensors)
        {
            stream.Write(t.Data);
        }
    }

    private byte[] BuildHeader()
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (_metadata.Count > 0)
            {
                json.WriteStartObject(MetadataKey);
                foreach ((string key, string value) in _metadata)
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (SafeTensor t in _tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", DTypeName(t.DType));
                json.WriteStartArray("shape");
                foreach (int d in t.Shape)
                {
                    json.WriteNumberValue(d);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.Length;
            }
            json.WriteEndObject();
        }
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        int length = (int)buffer.Length;
        int padded = (8 + length + 7) / 8 * 8 - 8;
        byte[] header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    // The exact dtype spellings of the format; nothing else (no numbers, spaces, signs or lists) names a type.
    private static readonly Dictionary<string, SafeTensorDType> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = SafeTensorDType.F64, ["F32"] = SafeTensorDType.F32, ["F16"] = SafeTensorDType.F16, ["BF16"] = SafeTensorDType.BF16,
        ["I64"] = SafeTensorDType.I64, ["I32"] = SafeTensorDType.I32, ["I16"] = SafeTensorDType.I16, ["I8"] = SafeTensorDType.I8,
        ["U8"] = SafeTensorDType.U8, ["BOOL"] = SafeTensorDType.Bool,
    };

    private static string DTypeName(SafeTensorDType dtype) => dtype == SafeTensorDType.Bool ? "BOOL" : dtype.ToString();

    private sealed record Entry(int Index, string Name, SafeTensorDType DType, int[] Shape, long Begin, long End);

    private static int CheckHeaderLength(ulong headerLength, long fileLength, string source)
    {
        if (headerLength == 0 || headerLength > MaxHeaderBytes)
        {
            throw new InvalidDataException($"{source}: header length {headerLength} is outside 1..{MaxHeaderBytes}.");
        }
        if ((long)headerLength > fileLength - 8)
        {
            throw new InvalidDataException($"{source}: header length {headerLength} runs past the end of the file ({fileLength} bytes): truncated?");
        }
        return (int)headerLength;
    }

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(ReadOnlySpan<byte> header, long dataLength, string source)
    {
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw Fail(source, "the header is not a JSON object.");
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                string name = reader.GetString()!;
                if (name.Length == 0)
                {
                    throw Fail(source, "a tensor has an empty name.");
                }
                if (!names.Add(name))
                {
                    throw Fail(source, $"key '{name}' appears twice in the header.");
                }
                reader.Read();
                if (name == MetadataKey)
                {
                    ReadMetadata(ref reader, metadata, source);
                }
                else
                {
                    entries.Add(ReadEntry(ref reader, entries.Count, name, dataLength, source));
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject)
            {
                throw Fail(source, "the header JSON ends early.");
            }
            // Anything after the object other than whitespace (the padding) makes the next Read throw a JsonException.
            reader.Read();
        }
        catch (JsonException e)
        {
            throw Fail(source, $"the header is not valid JSON ({e.Message}).");
        }
        catch (InvalidOperationException e)
        {
            throw Fail(source, $"the header has a value of the wrong type ({e.Message}).");
        }
        CheckCoverage(entries, dataLength, source);
        return (entries, metadata);
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string source)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(source, "__metadata__ is not an object of strings.");
        }
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw Fail(source, $"__metadata__ value of '{key}' is {reader.TokenType}, expected a string.");
            }
            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw Fail(source, $"__metadata__ key '{key}' appears twice.");
            }
        }
    }

    private static Entry ReadEntry(ref Utf8JsonReader reader, int index, string name, long dataLength, string source)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw Fail(source, $"tensor '{name}': expected an object with dtype, shape and data_offsets.");
        }
        SafeTensorDType? dtype = null;
        int[]? shape = null;
        long[]? offsets = null;
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string key = reader.GetString()!;
            if (!keys.Add(key))
            {
                throw Fail(source, $"tensor '{name}': key '{key}' appears twice.");
            }
            reader.Read();
            switch (key)
            {
                case "dtype":
                    string text = reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw Fail(source, $"tensor '{name}': dtype is not a string.");
                    dtype = DTypes.TryGetValue(text, out SafeTensorDType parsed)
                        ? parsed
                        : throw Fail(source, $"tensor '{name}': unknown dtype '{text}' (expected one of {string.Join(", ", DTypes.Keys)}).");
                    break;
                case "shape":
                    shape = ReadIntegers(ref reader, source, name, "shape", int.MaxValue).Select(v => (int)v).ToArray();
                    break;
                case "data_offsets":
                    offsets = ReadIntegers(ref reader, source, name, "data_offsets", long.MaxValue);
                    break;
                default:
                    SkipChecked(ref reader, source, name);  // unknown fields are ignored, but must be strict JSON too
                    break;
            }
        }
        if (dtype is null || shape is null || offsets is null)
        {
            throw Fail(source, $"tensor '{name}': dtype, shape and data_offsets are all required.");
        }
        if (offsets.Length != 2 || offsets[0] > offsets[1])
        {
            throw Fail(source, $"tensor '{name}': data_offsets must be two integers [begin, end] with begin <= end.");
        }
        if (offsets[1] > dataLength)
        {
            throw Fail(source, $"tensor '{name}': data_offsets [{offsets[0]}, {offsets[1]}] run past the {dataLength}-byte data section: truncated?");
        }
        long count = 1;
        foreach (int d in shape)
        {
            count *= d;
            if (count > dataLength)
            {
                break;
            }
        }
        long needed = count * SafeTensor.ElementSize(dtype.Value);
        if (needed != offsets[1] - offsets[0])
        {
            string shapeText = "[" + string.Join(", ", shape) + "]";
            throw Fail(source, $"tensor '{name}': data_offsets [{offsets[0]}, {offsets[1]}] hold {offsets[1] - offsets[0]} bytes but {dtype} {shapeText} needs {(count > dataLength ? "more" : needed.ToString(System.Globalization.CultureInfo.InvariantCulture))}.");
        }
        return new Entry(index, name, dtype.Value, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadIntegers(ref Utf8JsonReader reader, string source, string name, string what, long max)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw Fail(source, $"tensor '{name}': {what} is not an array of integers.");
        }
        var values = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || reader.ValueSpan[0] == (byte)'-' || !reader.TryGetInt64(out long v) || v > max)
            {
                throw Fail(source, $"tensor '{name}': {what} holds something other than a non-negative integer up to {max}.");
            }
            if (values.Count >= 64)
            {
                throw Fail(source, $"tensor '{name}': {what} has more than 64 entries.");
            }
            values.Add(v);
        }
        return [.. values];
    }

    // Skips one value, refusing a key that appears twice in any object inside it.
    private static void SkipChecked(ref Utf8JsonReader reader, string source, string name)
    {
        if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
        {
            return;
        }
        var keys = new Stack<HashSet<string>?>();
        int depth = reader.CurrentDepth;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    keys.Push(new HashSet<string>(StringComparer.Ordinal));
                    break;
                case JsonTokenType.StartArray:
                    keys.Push(null);
                    break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    keys.Pop();
                    break;
                case JsonTokenType.PropertyName:
                    string key = reader.GetString()!;
                    if (!keys.Peek()!.Add(key))
                    {
                        throw Fail(source, $"tensor '{name}': key '{key}' appears twice.");
                    }
                    break;
            }
        }
        while (reader.Read() && reader.CurrentDepth > depth);
        // The closing token of the skipped value is at the starting depth.
    }

    private static void CheckCoverage(List<Entry> entries, long dataLength, string source)
    {
        long expected = 0;
        foreach (Entry e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expected)
            {
                throw Fail(source, e.Begin < expected
                    ? $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] overlap the previous tensor's data."
                    : $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] leave a hole at bytes {expected}..{e.Begin}.");
            }
            expected = e.End;
        }
        if (expected != dataLength)
        {
            throw Fail(source, $"the tensors cover {expected} bytes of data but the file holds {dataLength} after the header.");
        }
    }

    private static InvalidDataException Fail(string source, string message) => new($"{source}: {message}");
}
