using System.Buffers.Binary;
using Engine.Onnx.Protobuf;

namespace Engine.Onnx;

/// <summary>
/// A TensorProto as read: element type, dimensions and values, from raw_data or from the typed fields (float_data,
/// int32_data for int8/uint8/int32, int64_data, double_data). The element count is checked against the bytes or
/// values present when the tensor is read, so the decoders below allocate only what the file holds.
/// </summary>
internal sealed class OnnxTensor
{
    /// <summary>More elements than this in one tensor is refused (2 GiB of float32 is far beyond any model here).</summary>
    public const long MaxElements = 1L << 29;

    public string Name { get; init; } = "";

    public OnnxDataType DataType { get; init; }

    public long[] Dims { get; init; } = [];

    public long ElementCount { get; init; }

    private byte[]? Raw { get; init; }

    private List<float>? FloatData { get; init; }

    private List<long>? IntData { get; init; }

    private List<double>? DoubleData { get; init; }

    public static OnnxTensor Read(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context + ": TensorProto");
        var dims = new List<long>();
        int dataType = 0;
        string name = "";
        byte[]? raw = null;
        List<float>? floats = null;
        List<long>? ints = null;
        List<double>? doubles = null;
        bool external = false, segmented = false;
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            switch (field)
            {
                case OnnxFields.TensorDims:
                    reader.ReadRepeatedInt64(wire, dims);
                    if (dims.Count > 8)
                    {
                        throw reader.Error($"tensor '{name}' has more than 8 dimensions");
                    }
                    break;
                case OnnxFields.TensorDataType:
                    reader.RequireType(wire, WireType.Varint, "data_type");
                    dataType = reader.ReadInt32();
                    break;
                case OnnxFields.TensorName:
                    reader.RequireType(wire, WireType.LengthDelimited, "name");
                    name = reader.ReadString();
                    break;
                case OnnxFields.TensorRawData:
                    reader.RequireType(wire, WireType.LengthDelimited, "raw_data");
                    raw = reader.ReadBytes().ToArray();
                    break;
                case OnnxFields.TensorFloatData:
                    reader.ReadRepeatedFloat(wire, floats ??= []);
                    break;
                case OnnxFields.TensorInt32Data:
                case OnnxFields.TensorInt64Data:
                    reader.ReadRepeatedInt64(wire, ints ??= []);
                    break;
                case OnnxFields.TensorDoubleData:
                    reader.ReadRepeatedDouble(wire, doubles ??= []);
                    break;
                case OnnxFields.TensorExternalData:
                    external = true;
                    reader.Skip(wire);
                    break;
                case OnnxFields.TensorDataLocation:
                    reader.RequireType(wire, WireType.Varint, "data_location");
                    external |= reader.ReadInt32() != 0;
                    break;
                case OnnxFields.TensorSegment:
                    segmented = true;
                    reader.Skip(wire);
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        string label = $"{context}: tensor '{name}'";
        if (external)
        {
            throw new InvalidDataException($"{label} keeps its data in an external file, which is not supported.");
        }
        if (segmented)
        {
            throw new InvalidDataException($"{label} is segmented, which is not supported.");
        }
        if (!Enum.IsDefined((OnnxDataType)dataType))
        {
            throw new InvalidDataException($"{label} has element type {dataType}; supported: float, double, uint8, int8, int32, int64.");
        }
        long count = 1;
        foreach (long d in dims)
        {
            if (d < 0 || d > MaxElements)
            {
                throw new InvalidDataException($"{label} has dimension {d}.");
            }
            count *= d;
            if (count > MaxElements)
            {
                throw new InvalidDataException($"{label} has more than {MaxElements} elements.");
            }
        }
        var type = (OnnxDataType)dataType;
        int sources = (raw is not null ? 1 : 0) + (floats is not null ? 1 : 0) + (ints is not null ? 1 : 0) + (doubles is not null ? 1 : 0);
        if (sources > 1)
        {
            throw new InvalidDataException($"{label} has values in more than one field.");
        }
        long present = raw is not null ? raw.LongLength / OnnxGraphBuilder.ElementSize(type)
            : floats?.Count ?? ints?.Count ?? doubles?.Count ?? 0;
        if ((raw is not null && raw.LongLength != count * OnnxGraphBuilder.ElementSize(type)) || (raw is null && present != count))
        {
            throw new InvalidDataException(
                $"{label} has shape [{string.Join(", ", dims)}] ({count} elements) but holds {(raw is not null ? $"{raw.Length} bytes of raw_data" : $"{present} values")}.");
        }
        bool fieldFits = raw is not null || count == 0 || type switch
        {
            OnnxDataType.Float => floats is not null,
            OnnxDataType.Double => doubles is not null,
            _ => ints is not null,
        };
        if (!fieldFits)
        {
            throw new InvalidDataException($"{label}: its values are in a field that does not hold {type}.");
        }
        return new OnnxTensor
        {
            Name = name, DataType = type, Dims = [.. dims], ElementCount = count, Raw = raw, FloatData = floats, IntData = ints, DoubleData = doubles,
        };
    }

    /// <summary>The values as float32; only for float tensors.</summary>
    public float[] ToFloats(string context)
    {
        Require(context, OnnxDataType.Float);
        float[] values = new float[ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Raw is not null ? BinaryPrimitives.ReadSingleLittleEndian(Raw.AsSpan(i * 4)) : FloatData![i];
        }
        return values;
    }

    /// <summary>The values as int64, from int64 or int32 tensors.</summary>
    public long[] ToInt64s(string context)
    {
        if (DataType is not (OnnxDataType.Int64 or OnnxDataType.Int32))
        {
            throw new InvalidDataException($"{context}: tensor '{Name}' is {DataType}, expected an integer tensor (int64 or int32).");
        }
        long[] values = new long[ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Raw is null ? IntData![i]
                : DataType == OnnxDataType.Int64 ? BinaryPrimitives.ReadInt64LittleEndian(Raw.AsSpan(i * 8))
                : BinaryPrimitives.ReadInt32LittleEndian(Raw.AsSpan(i * 4));
        }
        return values;
    }

    /// <summary>The values of an int32 tensor.</summary>
    public int[] ToInt32s(string context)
    {
        Require(context, OnnxDataType.Int32);
        int[] values = new int[ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Raw is not null ? BinaryPrimitives.ReadInt32LittleEndian(Raw.AsSpan(i * 4)) : Narrow(IntData![i], int.MinValue, int.MaxValue, context);
        }
        return values;
    }

    /// <summary>The values of an int8 tensor.</summary>
    public sbyte[] ToSBytes(string context)
    {
        Require(context, OnnxDataType.Int8);
        sbyte[] values = new sbyte[ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Raw is not null ? (sbyte)Raw[i] : (sbyte)Narrow(IntData![i], sbyte.MinValue, sbyte.MaxValue, context);
        }
        return values;
    }

    /// <summary>The values of a uint8 tensor.</summary>
    public byte[] ToBytes(string context)
    {
        Require(context, OnnxDataType.UInt8);
        byte[] values = new byte[ElementCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Raw is not null ? Raw[i] : (byte)Narrow(IntData![i], 0, 255, context);
        }
        return values;
    }

    /// <summary>An 8-bit zero point as an int (uint8 or int8 tensors), element <paramref name="index"/>.</summary>
    public int ZeroPoint(int index, string context) => DataType switch
    {
        OnnxDataType.UInt8 => ToBytes(context)[index],
        OnnxDataType.Int8 => ToSBytes(context)[index],
        OnnxDataType.Int32 => ToInt32s(context)[index],
        _ => throw new InvalidDataException($"{context}: zero point '{Name}' is {DataType}, expected uint8, int8 or int32."),
    };

    private void Require(string context, OnnxDataType type)
    {
        if (DataType != type)
        {
            throw new InvalidDataException($"{context}: tensor '{Name}' is {DataType}, expected {type}.");
        }
    }

    private int Narrow(long value, int min, int max, string context) =>
        value >= min && value <= max ? (int)value : throw new InvalidDataException($"{context}: tensor '{Name}' holds {value}, outside {DataType}.");

    /// <summary>Element <paramref name="index"/> of a float tensor, without decoding the rest (scales are scalars).</summary>
    public float FloatAt(int index, string context)
    {
        Require(context, OnnxDataType.Float);
        return Raw is not null ? BinaryPrimitives.ReadSingleLittleEndian(Raw.AsSpan(index * 4)) : FloatData![index];
    }

    /// <summary>A copy under another name and shape (Identity, or a Constant's value named after its output).</summary>
    public OnnxTensor Renamed(string name) => new()
    {
        Name = name, DataType = DataType, Dims = Dims, ElementCount = ElementCount, Raw = Raw, FloatData = FloatData, IntData = IntData, DoubleData = DoubleData,
    };

    /// <summary>A float tensor of the given shape and values (the result of folding constant nodes).</summary>
    public static OnnxTensor FromFloats(string name, long[] dims, float[] values) => new()
    {
        Name = name, DataType = OnnxDataType.Float, Dims = dims, ElementCount = values.Length, FloatData = [.. values],
    };
}

/// <summary>An AttributeProto as read; a graph-valued attribute is only noted (<see cref="HasGraph"/>), never parsed.</summary>
internal sealed class OnnxAttributeValue
{
    public string Name { get; init; } = "";

    public int Type { get; init; }

    public long I { get; init; }

    public float F { get; init; }

    public string? S { get; init; }

    public OnnxTensor? T { get; init; }

    public long[] Ints { get; init; } = [];

    public float[] Floats { get; init; } = [];

    public bool HasGraph { get; init; }

    public static OnnxAttributeValue Read(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context + ": AttributeProto");
        string name = "";
        int type = 0;
        long i = 0;
        float f = 0;
        string? s = null;
        OnnxTensor? t = null;
        var ints = new List<long>();
        var floats = new List<float>();
        bool graph = false;
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            switch (field)
            {
                case OnnxFields.AttributeName:
                    reader.RequireType(wire, WireType.LengthDelimited, "name");
                    name = reader.ReadString();
                    break;
                case OnnxFields.AttributeType:
                    reader.RequireType(wire, WireType.Varint, "type");
                    type = reader.ReadInt32();
                    break;
                case OnnxFields.AttributeI:
                    reader.RequireType(wire, WireType.Varint, "i");
                    i = reader.ReadInt64();
                    break;
                case OnnxFields.AttributeF:
                    reader.RequireType(wire, WireType.Fixed32, "f");
                    f = reader.ReadFixed32Float();
                    break;
                case OnnxFields.AttributeS:
                    reader.RequireType(wire, WireType.LengthDelimited, "s");
                    s = reader.ReadString();
                    break;
                case OnnxFields.AttributeT:
                    reader.RequireType(wire, WireType.LengthDelimited, "t");
                    t = OnnxTensor.Read(reader.ReadBytes(), context);
                    break;
                case OnnxFields.AttributeG:
                    graph = true;
                    reader.Skip(wire);
                    break;
                case OnnxFields.AttributeIntList:
                    reader.ReadRepeatedInt64(wire, ints);
                    break;
                case OnnxFields.AttributeFloatList:
                    reader.ReadRepeatedFloat(wire, floats);
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        return new OnnxAttributeValue { Name = name, Type = type, I = i, F = f, S = s, T = t, Ints = [.. ints], Floats = [.. floats], HasGraph = graph };
    }
}

/// <summary>A NodeProto as read.</summary>
internal sealed class OnnxNode
{
    public string Name { get; init; } = "";

    public string OpType { get; init; } = "";

    public string Domain { get; init; } = "";

    public List<string> Inputs { get; } = [];

    public List<string> Outputs { get; } = [];

    public Dictionary<string, OnnxAttributeValue> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>"Conv node 'conv1'", for error messages.</summary>
    public string Label => $"{OpType} node '{Name}'";

    public static OnnxNode Read(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context + ": NodeProto");
        string name = "", op = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new List<OnnxAttributeValue>();
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            switch (field)
            {
                case OnnxFields.NodeInput:
                    reader.RequireType(wire, WireType.LengthDelimited, "input");
                    inputs.Add(reader.ReadString());
                    break;
                case OnnxFields.NodeOutput:
                    reader.RequireType(wire, WireType.LengthDelimited, "output");
                    outputs.Add(reader.ReadString());
                    break;
                case OnnxFields.NodeName:
                    reader.RequireType(wire, WireType.LengthDelimited, "name");
                    name = reader.ReadString();
                    break;
                case OnnxFields.NodeOpType:
                    reader.RequireType(wire, WireType.LengthDelimited, "op_type");
                    op = reader.ReadString();
                    break;
                case OnnxFields.NodeDomain:
                    reader.RequireType(wire, WireType.LengthDelimited, "domain");
                    domain = reader.ReadString();
                    break;
                case OnnxFields.NodeAttribute:
                    reader.RequireType(wire, WireType.LengthDelimited, "attribute");
                    attributes.Add(OnnxAttributeValue.Read(reader.ReadBytes(), context));
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        var node = new OnnxNode { Name = name, OpType = op, Domain = domain };
        node.Inputs.AddRange(inputs);
        node.Outputs.AddRange(outputs);
        foreach (OnnxAttributeValue a in attributes)
        {
            if (!node.Attributes.TryAdd(a.Name, a))
            {
                throw new InvalidDataException($"{context}: {node.Label} has attribute '{a.Name}' twice.");
            }
        }
        return node;
    }
}

/// <summary>A ValueInfoProto as read: a name, an element type and dimensions (a dimension without a value is null: dynamic).</summary>
internal sealed record OnnxValueInfo(string Name, int ElementType, long?[] Dims)
{
    public static OnnxValueInfo Read(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context + ": ValueInfoProto");
        string name = "";
        int elementType = 0;
        long?[] dims = [];
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            if (field == OnnxFields.ValueInfoName && wire == WireType.LengthDelimited)
            {
                name = reader.ReadString();
            }
            else if (field == OnnxFields.ValueInfoType && wire == WireType.LengthDelimited)
            {
                var type = new ProtoReader(reader.ReadBytes(), reader.Context);
                while (!type.AtEnd)
                {
                    (int tf, WireType tw) = type.ReadTag();
                    if (tf == OnnxFields.TypeTensorType && tw == WireType.LengthDelimited)
                    {
                        (elementType, dims) = ReadTensorType(type.ReadBytes(), reader.Context);
                    }
                    else
                    {
                        type.Skip(tw);
                    }
                }
            }
            else
            {
                reader.Skip(wire);
            }
        }
        return new OnnxValueInfo(name, elementType, dims);
    }

    private static (int, long?[]) ReadTensorType(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context);
        int elementType = 0;
        var dims = new List<long?>();
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            if (field == OnnxFields.TensorTypeElemType && wire == WireType.Varint)
            {
                elementType = reader.ReadInt32();
            }
            else if (field == OnnxFields.TensorTypeShape && wire == WireType.LengthDelimited)
            {
                var shape = new ProtoReader(reader.ReadBytes(), context);
                while (!shape.AtEnd)
                {
                    (int sf, WireType sw) = shape.ReadTag();
                    if (sf != OnnxFields.ShapeDim || sw != WireType.LengthDelimited)
                    {
                        shape.Skip(sw);
                        continue;
                    }
                    var dim = new ProtoReader(shape.ReadBytes(), context);
                    long? value = null;
                    while (!dim.AtEnd)
                    {
                        (int df, WireType dw) = dim.ReadTag();
                        if (df == OnnxFields.DimValue && dw == WireType.Varint)
                        {
                            value = dim.ReadInt64();
                        }
                        else
                        {
                            dim.Skip(dw);
                        }
                    }
                    dims.Add(value);
                    if (dims.Count > 8)
                    {
                        throw reader.Error("a value has more than 8 dimensions");
                    }
                }
            }
            else
            {
                reader.Skip(wire);
            }
        }
        return (elementType, [.. dims]);
    }
}

/// <summary>A ModelProto and its GraphProto as read.</summary>
internal sealed class OnnxModelProto
{
    public long IrVersion { get; private set; }

    public Dictionary<string, long> Opsets { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public List<OnnxNode> Nodes { get; } = [];

    public List<OnnxTensor> Initializers { get; } = [];

    public List<OnnxValueInfo> Inputs { get; } = [];

    public List<OnnxValueInfo> Outputs { get; } = [];

    public bool HasSparseInitializers { get; private set; }

    public bool HasGraph { get; private set; }

    public static OnnxModelProto Read(ReadOnlySpan<byte> bytes, string name)
    {
        var model = new OnnxModelProto();
        var reader = new ProtoReader(bytes, name + ": ModelProto");
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            switch (field)
            {
                case OnnxFields.ModelIrVersion:
                    reader.RequireType(wire, WireType.Varint, "ir_version");
                    model.IrVersion = reader.ReadInt64();
                    break;
                case OnnxFields.ModelOpsetImport:
                {
                    reader.RequireType(wire, WireType.LengthDelimited, "opset_import");
                    (Dictionary<int, string> text, Dictionary<int, long> numbers) = ReadFlat(reader.ReadBytes(), name + ": OperatorSetIdProto");
                    model.Opsets[text.GetValueOrDefault(OnnxFields.OpsetDomain, "")] = numbers.GetValueOrDefault(OnnxFields.OpsetVersion);
                    break;
                }
                case OnnxFields.ModelMetadataProps:
                {
                    reader.RequireType(wire, WireType.LengthDelimited, "metadata_props");
                    (Dictionary<int, string> text, _) = ReadFlat(reader.ReadBytes(), name + ": StringStringEntryProto");
                    model.Metadata[text.GetValueOrDefault(OnnxFields.EntryKey, "")] = text.GetValueOrDefault(OnnxFields.EntryValue, "");
                    break;
                }
                case OnnxFields.ModelGraph:
                    reader.RequireType(wire, WireType.LengthDelimited, "graph");
                    if (model.HasGraph)
                    {
                        throw reader.Error("the model has two graphs");
                    }
                    model.HasGraph = true;
                    model.ReadGraph(reader.ReadBytes(), name);
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        if (!model.HasGraph)
        {
            throw new InvalidDataException($"{name}: the model has no graph (is this an ONNX file?).");
        }
        return model;
    }

    // A small message of string and varint fields (OperatorSetIdProto, StringStringEntryProto): each field's last value.
    private static (Dictionary<int, string> Text, Dictionary<int, long> Numbers) ReadFlat(ReadOnlySpan<byte> bytes, string context)
    {
        var reader = new ProtoReader(bytes, context);
        var text = new Dictionary<int, string>();
        var numbers = new Dictionary<int, long>();
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            if (wire == WireType.LengthDelimited)
            {
                text[field] = reader.ReadString();
            }
            else if (wire == WireType.Varint)
            {
                numbers[field] = reader.ReadInt64();
            }
            else
            {
                reader.Skip(wire);
            }
        }
        return (text, numbers);
    }

    private void ReadGraph(ReadOnlySpan<byte> bytes, string name)
    {
        var reader = new ProtoReader(bytes, name + ": GraphProto");
        while (!reader.AtEnd)
        {
            (int field, WireType wire) = reader.ReadTag();
            switch (field)
            {
                case OnnxFields.GraphNode:
                    reader.RequireType(wire, WireType.LengthDelimited, "node");
                    Nodes.Add(OnnxNode.Read(reader.ReadBytes(), name));
                    break;
                case OnnxFields.GraphInitializer:
                    reader.RequireType(wire, WireType.LengthDelimited, "initializer");
                    Initializers.Add(OnnxTensor.Read(reader.ReadBytes(), name));
                    break;
                case OnnxFields.GraphInput:
                    reader.RequireType(wire, WireType.LengthDelimited, "input");
                    Inputs.Add(OnnxValueInfo.Read(reader.ReadBytes(), name));
                    break;
                case OnnxFields.GraphOutput:
                    reader.RequireType(wire, WireType.LengthDelimited, "output");
                    Outputs.Add(OnnxValueInfo.Read(reader.ReadBytes(), name));
                    break;
                case OnnxFields.GraphSparseInitializer:
                    HasSparseInitializers = true;
                    reader.Skip(wire);
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
    }
}
