namespace Engine.Onnx;

/// <summary>Field numbers and enum values of the ONNX messages used here, as onnx/onnx.proto (IR version 8) defines them.</summary>
internal static class OnnxFields
{
    // ModelProto
    public const int ModelIrVersion = 1;
    public const int ModelProducerName = 2;
    public const int ModelGraph = 7;
    public const int ModelOpsetImport = 8;
    public const int ModelMetadataProps = 14;

    // OperatorSetIdProto
    public const int OpsetDomain = 1;
    public const int OpsetVersion = 2;

    // StringStringEntryProto
    public const int EntryKey = 1;
    public const int EntryValue = 2;

    // GraphProto
    public const int GraphNode = 1;
    public const int GraphName = 2;
    public const int GraphInitializer = 5;
    public const int GraphInput = 11;
    public const int GraphOutput = 12;
    public const int GraphSparseInitializer = 15;

    // NodeProto
    public const int NodeInput = 1;
    public const int NodeOutput = 2;
    public const int NodeName = 3;
    public const int NodeOpType = 4;
    public const int NodeAttribute = 5;
    public const int NodeDomain = 7;

    // AttributeProto
    public const int AttributeName = 1;
    public const int AttributeF = 2;
    public const int AttributeI = 3;
    public const int AttributeS = 4;
    public const int AttributeT = 5;
    public const int AttributeG = 6;
    public const int AttributeFloatList = 7;
    public const int AttributeIntList = 8;
    public const int AttributeType = 20;

    // AttributeProto.AttributeType
    public const int AttributeFloat = 1;
    public const int AttributeInt = 2;
    public const int AttributeString = 3;
    public const int AttributeTensor = 4;
    public const int AttributeFloats = 6;
    public const int AttributeInts = 7;

    // TensorProto
    public const int TensorDims = 1;
    public const int TensorDataType = 2;
    public const int TensorSegment = 3;
    public const int TensorFloatData = 4;
    public const int TensorInt32Data = 5;
    public const int TensorInt64Data = 7;
    public const int TensorName = 8;
    public const int TensorRawData = 9;
    public const int TensorDoubleData = 10;
    public const int TensorExternalData = 13;
    public const int TensorDataLocation = 14;

    // ValueInfoProto, TypeProto, TypeProto.FloatTensor, TensorShapeProto, TensorShapeProto.Dimension
    public const int ValueInfoName = 1;
    public const int ValueInfoType = 2;
    public const int TypeTensorType = 1;
    public const int TensorTypeElemType = 1;
    public const int TensorTypeShape = 2;
    public const int ShapeDim = 1;
    public const int DimValue = 1;
    public const int DimParam = 2;
}
