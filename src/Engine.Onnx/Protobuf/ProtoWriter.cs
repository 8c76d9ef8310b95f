using System.Buffers.Binary;
using System.Text;

namespace Engine.Onnx.Protobuf;

/// <summary>
/// The few pieces of the protocol buffers wire format an ONNX model needs (protobuf.dev/programming-guides/encoding):
/// a field is a tag (field number &lt;&lt; 3 | wire type) followed by a varint (type 0), a little-endian 64-bit value
/// (type 1), a length-prefixed byte string (type 2, also used for nested messages and packed repeated numbers) or a
/// little-endian 32-bit value (type 5). Fields are written in the order the methods are called.
/// </summary>
public sealed class ProtoWriter
{
    private readonly MemoryStream _bytes = new();

    /// <summary>The encoded message so far.</summary>
    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>A varint field (int32, int64, enum, bool); negative values take ten bytes, as protobuf's int64 does.</summary>
    public ProtoWriter Int(int field, long value)
    {
        Tag(field, WireType.Varint);
        Varint(unchecked((ulong)value));
        return this;
    }

    /// <summary>A 32-bit float field (wire type 5).</summary>
    public ProtoWriter Float(int field, float value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        return Fixed(field, WireType.Fixed32, b);
    }

    /// <summary>A 64-bit double field (wire type 1).</summary>
    public ProtoWriter Double(int field, double value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(b, value);
        return Fixed(field, WireType.Fixed64, b);
    }

    /// <summary>A length-delimited field holding <paramref name="value"/> as is.</summary>
    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, WireType.LengthDelimited);
        Varint((ulong)value.Length);
        _bytes.Write(value);
        return this;
    }

    /// <summary>A UTF-8 string field.</summary>
    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>A nested message field, built by <paramref name="build"/> on a fresh writer.</summary>
    public ProtoWriter Message(int field, Action<ProtoWriter> build)
    {
        var inner = new ProtoWriter();
        build(inner);
        return Bytes(field, inner.ToArray());
    }

    /// <summary>A packed repeated varint field (one length-delimited field holding every value).</summary>
    public ProtoWriter PackedInts(int field, IEnumerable<long> values)
    {
        var inner = new ProtoWriter();
        foreach (long v in values)
        {
            inner.Varint(unchecked((ulong)v));
        }
        return Bytes(field, inner.ToArray());
    }

    /// <summary>A packed repeated float field: the values' little-endian bytes in one length-delimited field.</summary>
    public ProtoWriter PackedFloats(int field, ReadOnlySpan<float> values)
    {
        byte[] raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), values[i]);
        }
        return Bytes(field, raw);
    }

    private ProtoWriter Fixed(int field, WireType wireType, ReadOnlySpan<byte> littleEndian)
    {
        Tag(field, wireType);
        _bytes.Write(littleEndian);
        return this;
    }

    private void Tag(int field, WireType wireType) => Varint((ulong)(((long)field << 3) | (long)wireType));

    private void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _bytes.WriteByte((byte)value);
    }
}

/// <summary>The protobuf wire types this reader and writer know (3 and 4, the deprecated groups, are refused).</summary>
public enum WireType
{
    /// <summary>A base-128 varint.</summary>
    Varint = 0,

    /// <summary>Eight little-endian bytes (double, fixed64).</summary>
    Fixed64 = 1,

    /// <summary>A varint length, then that many bytes (strings, bytes, messages, packed repeated fields).</summary>
    LengthDelimited = 2,

    /// <summary>Four little-endian bytes (float, fixed32).</summary>
    Fixed32 = 5,
}
