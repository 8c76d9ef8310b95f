using System.Buffers.Binary;
using System.Text;

namespace Engine.Onnx.Protobuf;

/// <summary>
/// Reads the protocol buffers wire format field by field from a span, checking every length against the bytes that
/// remain before it is used, so that a truncated or hostile message fails with an <see cref="InvalidDataException"/>
/// (naming <see cref="Context"/>) and never allocates more than the message itself holds.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> bytes, string context)
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;
    private int _position;

    /// <summary>What the message is, for error messages ("model.onnx: NodeProto").</summary>
    public readonly string Context => context;

    /// <summary>Whether every byte has been read.</summary>
    public readonly bool AtEnd => _position >= _bytes.Length;

    /// <summary>Reads the next tag: its field number and wire type.</summary>
    public (int Field, WireType Type) ReadTag()
    {
        ulong tag = ReadVarint();
        ulong field = tag >> 3;
        int type = (int)(tag & 7);
        if (field == 0 || field > int.MaxValue)
        {
            throw Error($"field number {field} at byte {_position}");
        }
        if (type is not (0 or 1 or 2 or 5))
        {
            throw Error($"wire type {type} (field {field}) is not supported");
        }
        return ((int)field, (WireType)type);
    }

    /// <summary>A base-128 varint of at most ten bytes.</summary>
    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_position >= _bytes.Length)
            {
                throw Error("the message ends inside a varint");
            }
            byte b = _bytes[_position++];
            if (shift == 63 && b > 1)
            {
                throw Error("a varint overflows 64 bits");
            }
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
        throw Error("a varint is longer than ten bytes");
    }

    /// <summary>A varint read as a protobuf int64 (two's complement).</summary>
    public long ReadInt64() => unchecked((long)ReadVarint());

    /// <summary>A varint that must fit a signed 32-bit integer (protobuf int32 and enums; negative ones take ten bytes).</summary>
    public int ReadInt32()
    {
        long value = ReadInt64();
        return value is >= int.MinValue and <= int.MaxValue ? (int)value : throw Error($"value {value} does not fit int32");
    }

    /// <summary>Four little-endian bytes as a float.</summary>
    public float ReadFixed32Float() => BinaryPrimitives.ReadSingleLittleEndian(Take(4));

    /// <summary>Eight little-endian bytes as a double.</summary>
    public double ReadFixed64Double() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

    /// <summary>The payload of a length-delimited field (a view into the message, no copy).</summary>
    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_bytes.Length - _position))
        {
            throw Error($"a field of {length} bytes runs past the end of the message ({_bytes.Length - _position} bytes left)");
        }
        return Take((int)length);
    }

    /// <summary>The payload of a length-delimited field as strict UTF-8.</summary>
    public string ReadString()
    {
        ReadOnlySpan<byte> raw = ReadBytes();
        try
        {
            return StrictUtf8.GetString(raw);
        }
        catch (DecoderFallbackException)
        {
            throw Error("a string is not valid UTF-8");
        }
    }

    /// <summary>Skips a field of the given wire type (unknown fields are allowed by protobuf and ignored).</summary>
    public void Skip(WireType type)
    {
        switch (type)
        {
            case WireType.Varint:
                ReadVarint();
                break;
            case WireType.Fixed64:
                Take(8);
                break;
            case WireType.Fixed32:
                Take(4);
                break;
            default:
                ReadBytes();
                break;
        }
    }

    /// <summary>
    /// Appends a repeated varint field to <paramref name="values"/>, packed (one length-delimited run) or unpacked (one
    /// value); the count of a packed run is known from its bytes before the list grows.
    /// </summary>
    public void ReadRepeatedInt64(WireType type, List<long> values)
    {
        if (type == WireType.Varint)
        {
            values.Add(ReadInt64());
            return;
        }
        RequireType(type, WireType.LengthDelimited, "a repeated integer");
        var packed = new ProtoReader(ReadBytes(), Context);
        while (!packed.AtEnd)
        {
            values.Add(packed.ReadInt64());
        }
    }

    /// <summary>Appends a repeated float field to <paramref name="values"/>, packed or unpacked.</summary>
    public void ReadRepeatedFloat(WireType type, List<float> values) =>
        ReadRepeatedFixed(type, values, WireType.Fixed32, 4, BinaryPrimitives.ReadSingleLittleEndian, "float");

    /// <summary>Appends a repeated double field to <paramref name="values"/>, packed or unpacked.</summary>
    public void ReadRepeatedDouble(WireType type, List<double> values) =>
        ReadRepeatedFixed(type, values, WireType.Fixed64, 8, BinaryPrimitives.ReadDoubleLittleEndian, "double");

    private delegate T Decoder<T>(ReadOnlySpan<byte> bytes);

    // One fixed-size value (unpacked), or a length-delimited run of them (packed) whose length must be a whole number of values.
    private void ReadRepeatedFixed<T>(WireType type, List<T> values, WireType unpacked, int size, Decoder<T> decode, string what)
    {
        if (type == unpacked)
        {
            values.Add(decode(Take(size)));
            return;
        }
        RequireType(type, WireType.LengthDelimited, $"a repeated {what}");
        ReadOnlySpan<byte> raw = ReadBytes();
        if (raw.Length % size != 0)
        {
            throw Error($"a packed {what} field of {raw.Length} bytes is not a whole number of values");
        }
        for (int i = 0; i < raw.Length; i += size)
        {
            values.Add(decode(raw[i..]));
        }
    }

    /// <summary>Throws unless a field arrived with the wire type its declaration implies.</summary>
    public readonly void RequireType(WireType actual, WireType expected, string what)
    {
        if (actual != expected)
        {
            throw Error($"{what} has wire type {(int)actual}, expected {(int)expected}");
        }
    }

    /// <summary>A format error that names the message being read.</summary>
    public readonly InvalidDataException Error(string problem) => new($"{Context}: {problem}.");

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _bytes.Length - _position)
        {
            throw Error($"the message ends {count - (_bytes.Length - _position)} bytes early");
        }
        ReadOnlySpan<byte> slice = _bytes.Slice(_position, count);
        _position += count;
        return slice;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
