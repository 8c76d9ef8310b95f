using System.Runtime.InteropServices;
using Engine.Onnx.Protobuf;

namespace Engine.Onnx;

/// <summary>ONNX element types (TensorProto.DataType in onnx.proto) that this project writes or reads.</summary>
public enum OnnxDataType
{
    /// <summary>float32.</summary>
    Float = 1,

    /// <summary>uint8.</summary>
    UInt8 = 2,

    /// <summary>int8.</summary>
    Int8 = 3,

    /// <summary>int32.</summary>
    Int32 = 6,

    /// <summary>int64.</summary>
    Int64 = 7,

    /// <summary>float64.</summary>
    Double = 11,
}

/// <summary>
/// One attribute of a node, as AttributeProto stores it: an int, a float, a string, a list of ints or floats, or a
/// tensor (the value of a Constant node).
/// </summary>
public sealed record OnnxAttribute
{
    private OnnxAttribute(string name, int type) => (Name, Type) = (name, type);

    /// <summary>The attribute name, for example "kernel_shape".</summary>
    public string Name { get; }

    /// <summary>AttributeProto.AttributeType: 1 float, 2 int, 3 string, 4 tensor, 6 floats, 7 ints.</summary>
    public int Type { get; }

    internal long IntValue { get; private init; }

    internal float FloatValue { get; private init; }

    internal string? StringValue { get; private init; }

    internal long[] IntValues { get; private init; } = [];

    internal float[] FloatValues { get; private init; } = [];

    internal Action<ProtoWriter>? TensorValue { get; private init; }

    /// <summary>An INT attribute.</summary>
    public static OnnxAttribute Int(string name, long value) => new(name, OnnxFields.AttributeInt) { IntValue = value };

    /// <summary>An INTS attribute.</summary>
    public static OnnxAttribute Ints(string name, params long[] values) => new(name, OnnxFields.AttributeInts) { IntValues = values };

    /// <summary>A FLOAT attribute.</summary>
    public static OnnxAttribute Float(string name, float value) => new(name, OnnxFields.AttributeFloat) { FloatValue = value };

    /// <summary>A FLOATS attribute.</summary>
    public static OnnxAttribute Floats(string name, params float[] values) => new(name, OnnxFields.AttributeFloats) { FloatValues = values };

    /// <summary>A STRING attribute (UTF-8).</summary>
    public static OnnxAttribute String(string name, string value) => new(name, OnnxFields.AttributeString) { StringValue = value };

    /// <summary>A TENSOR attribute (Constant's <c>value</c>) holding int64 values, written in the typed int64_data field.</summary>
    public static OnnxAttribute Int64Tensor(string name, int[] dims, params long[] values) =>
        new(name, OnnxFields.AttributeTensor) { TensorValue = t => OnnxGraphBuilder.WriteTensor(t, "", OnnxDataType.Int64, dims, [], values, typed: true) };

    /// <summary>A TENSOR attribute holding float values, written as raw_data.</summary>
    public static OnnxAttribute FloatTensor(string name, int[] dims, params float[] values) =>
        new(name, OnnxFields.AttributeTensor)
        {
            TensorValue = t => OnnxGraphBuilder.WriteTensor(t, "", OnnxDataType.Float, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), [], typed: false),
        };

    internal void Write(ProtoWriter a)
    {
        a.String(OnnxFields.AttributeName, Name).Int(OnnxFields.AttributeType, Type);
        switch (Type)
        {
            case OnnxFields.AttributeInt:
                a.Int(OnnxFields.AttributeI, IntValue);
                break;
            case OnnxFields.AttributeFloat:
                a.Float(OnnxFields.AttributeF, FloatValue);
                break;
            case OnnxFields.AttributeString:
                a.String(OnnxFields.AttributeS, StringValue!);
                break;
            case OnnxFields.AttributeInts:
                a.PackedInts(OnnxFields.AttributeIntList, IntValues);
                break;
            case OnnxFields.AttributeFloats:
                a.PackedFloats(OnnxFields.AttributeFloatList, FloatValues);
                break;
            case OnnxFields.AttributeTensor:
                a.Message(OnnxFields.AttributeT, TensorValue!);
                break;
        }
    }
}

/// <summary>
/// Builds an ONNX ModelProto (onnx/onnx.proto) with <see cref="ProtoWriter"/>: nodes in the order given, initializers
/// (as raw_data, or in the typed float_data / int32_data / int64_data fields), typed graph inputs and outputs with
/// fixed or named (dynamic) dimensions, and metadata_props. It checks nothing about the graph: that is the reader's job.
/// </summary>
public sealed class OnnxGraphBuilder
{
    private readonly List<Action<ProtoWriter>> _nodes = [];
    private readonly List<Action<ProtoWriter>> _initializers = [];
    private readonly List<Action<ProtoWriter>> _inputs = [];
    private readonly List<Action<ProtoWriter>> _outputs = [];
    private readonly List<(string Key, string Value)> _metadata = [];
    private readonly HashSet<string> _initializerNames = new(StringComparer.Ordinal);

    /// <summary>Adds a node of the default (ai.onnx) domain.</summary>
    public OnnxGraphBuilder Node(string opType, string name, string[] inputs, string[] outputs, params OnnxAttribute[] attributes)
    {
        _nodes.Add(n =>
        {
            foreach (string i in inputs)
            {
                n.String(OnnxFields.NodeInput, i);
            }
            foreach (string o in outputs)
            {
                n.String(OnnxFields.NodeOutput, o);
            }
            n.String(OnnxFields.NodeName, name).String(OnnxFields.NodeOpType, opType);
            foreach (OnnxAttribute a in attributes)
            {
                n.Message(OnnxFields.NodeAttribute, a.Write);
            }
        });
        return this;
    }

    /// <summary>A float initializer (raw_data, or float_data when <paramref name="typed"/>); returns its name.</summary>
    public string Floats(string name, int[] dims, ReadOnlySpan<float> values, bool typed = false)
    {
        if (typed)
        {
            float[] copy = values.ToArray();
            return Add(name, t => WriteFloatTensor(t, name, dims, copy));
        }
        return Raw(name, OnnxDataType.Float, dims, MemoryMarshal.AsBytes(values));
    }

    /// <summary>An int64 initializer (raw_data, or int64_data when <paramref name="typed"/>); returns its name.</summary>
    public string Int64s(string name, int[] dims, ReadOnlySpan<long> values, bool typed = false)
    {
        if (typed)
        {
            long[] copy = values.ToArray();
            return Add(name, t => WriteTensor(t, name, OnnxDataType.Int64, dims, [], copy, typed: true));
        }
        return Raw(name, OnnxDataType.Int64, dims, MemoryMarshal.AsBytes(values));
    }

    /// <summary>An int32 initializer (raw_data, or int32_data when <paramref name="typed"/>); returns its name.</summary>
    public string Int32s(string name, int[] dims, ReadOnlySpan<int> values, bool typed = false)
    {
        if (typed)
        {
            long[] copy = [.. values.ToArray().Select(v => (long)v)];
            return Add(name, t => WriteTensor(t, name, OnnxDataType.Int32, dims, [], copy, typed: true));
        }
        return Raw(name, OnnxDataType.Int32, dims, MemoryMarshal.AsBytes(values));
    }

    /// <summary>An int8 initializer (raw_data, or int32_data, one value per element, when <paramref name="typed"/>); returns its name.</summary>
    public string Int8s(string name, int[] dims, ReadOnlySpan<sbyte> values, bool typed = false)
    {
        if (typed)
        {
            long[] copy = [.. values.ToArray().Select(v => (long)v)];
            return Add(name, t => WriteTensor(t, name, OnnxDataType.Int8, dims, [], copy, typed: true));
        }
        return Raw(name, OnnxDataType.Int8, dims, MemoryMarshal.AsBytes(values));
    }

    /// <summary>A uint8 initializer (raw_data); returns its name.</summary>
    public string UInt8s(string name, int[] dims, ReadOnlySpan<byte> values) => Raw(name, OnnxDataType.UInt8, dims, values);

    /// <summary>An initializer of any element type from its little-endian bytes (raw_data); returns its name.</summary>
    public string Raw(string name, OnnxDataType type, int[] dims, ReadOnlySpan<byte> raw)
    {
        byte[] copy = raw.ToArray();
        return Add(name, t => WriteTensor(t, name, type, dims, copy, [], typed: false));
    }

    /// <summary>Declares a graph input; each dimension is an int (fixed) or a string (a named, dynamic dimension).</summary>
    public OnnxGraphBuilder Input(string name, OnnxDataType type, params object[] dims)
    {
        _inputs.Add(v => ValueInfo(v, name, type, dims));
        return this;
    }

    /// <summary>Declares a graph output; dimensions as for <see cref="Input"/>.</summary>
    public OnnxGraphBuilder Output(string name, OnnxDataType type, params object[] dims)
    {
        _outputs.Add(v => ValueInfo(v, name, type, dims));
        return this;
    }

    /// <summary>Adds a metadata_props entry.</summary>
    public OnnxGraphBuilder Metadata(string key, string value)
    {
        _metadata.Add((key, value));
        return this;
    }

    /// <summary>The ModelProto's bytes: IR version 8, one ai.onnx opset import, the graph, the metadata.</summary>
    public byte[] Build(string graphName = "engine", int opset = 13, string producer = "Engine.Onnx")
    {
        var model = new ProtoWriter()
            .Int(OnnxFields.ModelIrVersion, 8)
            .String(OnnxFields.ModelProducerName, producer)
            .Message(OnnxFields.ModelOpsetImport, o => o.String(OnnxFields.OpsetDomain, "").Int(OnnxFields.OpsetVersion, opset))
            .Message(OnnxFields.ModelGraph, graph =>
            {
                foreach (var node in _nodes)
                {
                    graph.Message(OnnxFields.GraphNode, node);
                }
                graph.String(OnnxFields.GraphName, graphName);
                foreach (var init in _initializers)
                {
                    graph.Message(OnnxFields.GraphInitializer, init);
                }
                foreach (var input in _inputs)
                {
                    graph.Message(OnnxFields.GraphInput, input);
                }
                foreach (var output in _outputs)
                {
                    graph.Message(OnnxFields.GraphOutput, output);
                }
            });
        foreach ((string key, string value) in _metadata)
        {
            model.Message(OnnxFields.ModelMetadataProps, e => e.String(OnnxFields.EntryKey, key).String(OnnxFields.EntryValue, value));
        }
        return model.ToArray();
    }

    private string Add(string name, Action<ProtoWriter> write)
    {
        if (_initializerNames.Add(name))
        {
            _initializers.Add(write);
        }
        return name;
    }

    internal static void WriteTensor(ProtoWriter t, string name, OnnxDataType type, int[] dims, byte[] raw, long[] typedValues, bool typed)
    {
        if (dims.Length > 0)
        {
            t.PackedInts(OnnxFields.TensorDims, dims.Select(d => (long)d));
        }
        t.Int(OnnxFields.TensorDataType, (int)type);
        if (typed)
        {
            t.PackedInts(type == OnnxDataType.Int64 ? OnnxFields.TensorInt64Data : OnnxFields.TensorInt32Data, typedValues);
        }
        if (name.Length > 0)
        {
            t.String(OnnxFields.TensorName, name);
        }
        if (!typed)
        {
            t.Bytes(OnnxFields.TensorRawData, raw);
        }
    }

    private static void WriteFloatTensor(ProtoWriter t, string name, int[] dims, float[] values)
    {
        if (dims.Length > 0)
        {
            t.PackedInts(OnnxFields.TensorDims, dims.Select(d => (long)d));
        }
        t.Int(OnnxFields.TensorDataType, (int)OnnxDataType.Float).PackedFloats(OnnxFields.TensorFloatData, values).String(OnnxFields.TensorName, name);
    }

    private static void ValueInfo(ProtoWriter v, string name, OnnxDataType type, object[] dims) =>
        v.String(OnnxFields.ValueInfoName, name).Message(OnnxFields.ValueInfoType, t => t.Message(OnnxFields.TypeTensorType, tensor =>
        {
            tensor.Int(OnnxFields.TensorTypeElemType, (int)type);
            tensor.Message(OnnxFields.TensorTypeShape, shape =>
            {
                foreach (object d in dims)
                {
                    shape.Message(OnnxFields.ShapeDim, dim =>
                    {
                        if (d is int n)
                        {
                            dim.Int(OnnxFields.DimValue, n);
                        }
                        else
                        {
                            dim.String(OnnxFields.DimParam, (string)d);
                        }
                    });
                }
            });
        }));

    internal static int ElementSize(OnnxDataType type) => type switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 => 4,
        OnnxDataType.UInt8 or OnnxDataType.Int8 => 1,
        OnnxDataType.Int64 or OnnxDataType.Double => 8,
        _ => 0,
    };
}
