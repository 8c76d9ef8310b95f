namespace Engine.Onnx;

/// <summary>What DequantizeLinear made of constant inputs: the codes, their scale and zero point, and the axis of a per-channel scale.</summary>
internal sealed record Dequantization(OnnxTensor Codes, OnnxTensor Scale, OnnxTensor? ZeroPoint, long Axis, OnnxNode Node);

/// <summary>
/// A value known before any input arrives: an initializer, a Constant node's value, or the result of Identity,
/// DequantizeLinear or Mul over such values. The last two are kept unevaluated (<see cref="Dequantized"/>,
/// <see cref="Factors"/>) because the int8 importer needs the codes and scales themselves, not their float product.
/// </summary>
internal sealed class ConstantValue(OnnxTensor tensor)
{
    public OnnxTensor FloatTensor { get; } = tensor;

    public Dequantization? Dequantized { get; init; }

    public (OnnxTensor A, OnnxTensor B)? Factors { get; init; }
}

/// <summary>
/// An ONNX graph resolved into what this engine can run: its constants, and its other nodes as one chain from the
/// single graph input to the single graph output, each node reading exactly one non-constant value. The order comes
/// from the value names (who produces and who consumes what), not from the order of the nodes in the file. Anything
/// else (an unknown operator or domain, a second input, a branch or merge, a node off the path) is refused with an
/// <see cref="InvalidDataException"/> naming the file, the operator and the node.
/// </summary>
internal sealed class OnnxGraph
{
    private static readonly Dictionary<string, string[]> Supported = new(StringComparer.Ordinal)
    {
        ["Conv"] = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
        ["Gemm"] = ["alpha", "beta", "transA", "transB"],
        ["MatMul"] = [],
        ["Add"] = [],
        ["Mul"] = [],
        ["Relu"] = [],
        ["Identity"] = [],
        ["AveragePool"] = ["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"],
        ["Flatten"] = ["axis"],
        ["Reshape"] = ["allowzero"],
        ["Constant"] = ["value", "value_float", "value_floats", "value_int", "value_ints"],
        ["QuantizeLinear"] = ["axis", "saturate"],
        ["DequantizeLinear"] = ["axis"],
        ["MatMulInteger"] = [],
        ["Cast"] = ["to", "saturate"],
    };

    private OnnxGraph(string file, OnnxModelProto model, OnnxValueInfo input, string output, Dictionary<string, ConstantValue> constants, List<OnnxNode> chain)
    {
        File = file;
        Model = model;
        Input = input;
        OutputName = output;
        Constants = constants;
        Chain = chain;
    }

    /// <summary>The file name, for messages.</summary>
    public string File { get; }

    public OnnxModelProto Model { get; }

    public OnnxValueInfo Input { get; }

    public string OutputName { get; }

    public Dictionary<string, ConstantValue> Constants { get; }

    /// <summary>The non-constant nodes from input to output; node i reads the output of node i - 1 (node 0 the graph input).</summary>
    public List<OnnxNode> Chain { get; }

    /// <summary>An error naming the file and the node.</summary>
    public InvalidDataException Error(OnnxNode node, string problem) => new($"{File}: {node.Label}: {problem}");

    /// <summary>The constant feeding input <paramref name="index"/> of <paramref name="node"/>, or null when the input is absent.</summary>
    public ConstantValue? OptionalConstant(OnnxNode node, int index)
    {
        if (index >= node.Inputs.Count || node.Inputs[index].Length == 0)
        {
            return null;
        }
        return Constants.TryGetValue(node.Inputs[index], out ConstantValue? value)
            ? value
            : throw Error(node, $"input {index} ('{node.Inputs[index]}') must be a constant (an initializer or a Constant node).");
    }

    /// <summary>The constant feeding input <paramref name="index"/>, which must be present.</summary>
    public ConstantValue Constant(OnnxNode node, int index) =>
        OptionalConstant(node, index) ?? throw Error(node, $"input {index} is missing.");

    public static OnnxGraph Resolve(OnnxModelProto model, string file)
    {
        if (model.HasSparseInitializers)
        {
            throw new InvalidDataException($"{file}: sparse initializers are not supported.");
        }
        foreach (OnnxNode node in model.Nodes)
        {
            if (node.Domain is not ("" or "ai.onnx"))
            {
                throw new InvalidDataException($"{file}: {node.Label}: operator domain '{node.Domain}' is not supported (only the standard ai.onnx operators are).");
            }
            if (!Supported.TryGetValue(node.OpType, out string[]? attributes))
            {
                throw new InvalidDataException(
                    $"{file}: {node.Label}: operator '{node.OpType}' is not supported (supported: {string.Join(", ", Supported.Keys)}).");
            }
            string? unknown = node.Attributes.Keys.FirstOrDefault(a => !attributes.Contains(a));
            if (unknown is not null)
            {
                throw new InvalidDataException($"{file}: {node.Label}: attribute '{unknown}' is not supported.");
            }
            if (node.Outputs.Count != 1 || node.Outputs[0].Length == 0)
            {
                throw new InvalidDataException($"{file}: {node.Label}: expected one output, found {node.Outputs.Count}.");
            }
        }

        var constants = new Dictionary<string, ConstantValue>(StringComparer.Ordinal);
        foreach (OnnxTensor t in model.Initializers)
        {
            if (t.Name.Length == 0 || !constants.TryAdd(t.Name, new ConstantValue(t)))
            {
                throw new InvalidDataException($"{file}: initializer name '{t.Name}' is empty or used twice.");
            }
        }
        var inputs = model.Inputs.Where(i => !constants.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1)
        {
            throw new InvalidDataException(
                $"{file}: the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => $"'{i.Name}'"))}); exactly one is supported.");
        }
        if (model.Outputs.Count != 1)
        {
            throw new InvalidDataException($"{file}: the graph has {model.Outputs.Count} outputs; exactly one is supported.");
        }
        OnnxValueInfo input = inputs[0];
        string output = model.Outputs[0].Name;

        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (OnnxNode node in model.Nodes)
        {
            string y = node.Outputs[0];
            if (y == input.Name || constants.ContainsKey(y) || !producers.TryAdd(y, node))
            {
                throw new InvalidDataException($"{file}: {node.Label}: its output '{y}' is also the graph input, an initializer or another node's output.");
            }
        }

        // Fold constant nodes in dependency order, whatever order the file lists them in: a node is folded once every
        // value it reads is constant (a work list over readers, linear in the graph's size even for hostile files).
        var readers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        var unresolved = new Dictionary<OnnxNode, int>(ReferenceEqualityComparer.Instance);
        var ready = new Queue<OnnxNode>();
        foreach (OnnxNode node in model.Nodes)
        {
            var reads = node.Inputs.Where(x => x.Length > 0).Distinct(StringComparer.Ordinal).ToList();
            int missing = 0;
            foreach (string x in reads)
            {
                if (!constants.ContainsKey(x))
                {
                    missing++;
                    (readers.TryGetValue(x, out List<OnnxNode>? list) ? list : readers[x] = []).Add(node);
                }
            }
            unresolved[node] = missing;
            if (node.OpType == "Constant" || (missing == 0 && reads.Count > 0))
            {
                ready.Enqueue(node);
            }
        }
        var folded = new HashSet<OnnxNode>(ReferenceEqualityComparer.Instance);
        while (ready.TryDequeue(out OnnxNode? node))
        {
            constants[node.Outputs[0]] = Fold(node, constants, file);
            folded.Add(node);
            foreach (OnnxNode reader in readers.GetValueOrDefault(node.Outputs[0]) ?? [])
            {
                if (--unresolved[reader] == 0 && reader.OpType != "Constant")
                {
                    ready.Enqueue(reader);
                }
            }
        }
        var pending = model.Nodes.Where(n => !folded.Contains(n)).ToList();

        // The rest: every node reads exactly one non-constant value, and every value feeds at most one node.
        var consumers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (OnnxNode node in pending)
        {
            var activations = node.Inputs.Where(x => x.Length > 0 && !constants.ContainsKey(x)).ToList();
            foreach (string x in activations)
            {
                if (x != input.Name && !producers.ContainsKey(x))
                {
                    throw new InvalidDataException($"{file}: {node.Label}: input '{x}' is neither the graph input, an initializer nor any node's output.");
                }
            }
            if (activations.Count != 1)
            {
                throw new InvalidDataException(
                    $"{file}: {node.Label}: reads {activations.Count} non-constant values ({string.Join(", ", activations)}); only a single chain of layers is supported (no branches or merges).");
            }
            if (consumers.TryGetValue(activations[0], out OnnxNode? other))
            {
                throw new InvalidDataException(
                    $"{file}: {node.Label}: value '{activations[0]}' also feeds {other.Label}; branches are not supported.");
            }
            consumers[activations[0]] = node;
        }
        var chain = new List<OnnxNode>();
        string value = input.Name;
        while (consumers.TryGetValue(value, out OnnxNode? next) && chain.Count <= pending.Count)
        {
            chain.Add(next);
            value = next.Outputs[0];
        }
        var onChain = new HashSet<OnnxNode>(chain, ReferenceEqualityComparer.Instance);
        OnnxNode? stray = pending.FirstOrDefault(n => !onChain.Contains(n));
        if (stray is not null)
        {
            throw new InvalidDataException($"{file}: {stray.Label}: not on the path from the graph input to its output.");
        }
        if (value != output)
        {
            throw new InvalidDataException($"{file}: the graph output '{output}' is not where the chain of nodes from input '{input.Name}' ends ('{value}').");
        }
        if (chain.Count == 0)
        {
            throw new InvalidDataException($"{file}: the graph has no operators between its input and its output.");
        }
        return new OnnxGraph(file, model, input, output, constants, chain);
    }

    private static ConstantValue Fold(OnnxNode node, Dictionary<string, ConstantValue> constants, string file)
    {
        string y = node.Outputs[0];
        ConstantValue Input(int i) => constants[node.Inputs[i]];
        switch (node.OpType)
        {
            case "Constant":
            {
                if (node.Inputs.Count != 0 || node.Attributes.Count != 1)
                {
                    throw new InvalidDataException($"{file}: {node.Label}: a Constant node takes no inputs and exactly one value attribute.");
                }
                OnnxAttributeValue a = node.Attributes.Values.Single();
                OnnxTensor tensor = a.Name switch
                {
                    "value" when a.T is not null => a.T.Renamed(y),
                    "value_float" => OnnxTensor.FromFloats(y, [], [a.F]),
                    "value_floats" => OnnxTensor.FromFloats(y, [a.Floats.Length], a.Floats),
                    "value_int" => Int64Tensor(y, [], [a.I]),
                    "value_ints" => Int64Tensor(y, [a.Ints.Length], a.Ints),
                    _ => throw new InvalidDataException($"{file}: {node.Label}: attribute '{a.Name}' holds no value this reader understands."),
                };
                return new ConstantValue(tensor);
            }
            case "Identity" when node.Inputs.Count == 1:
            {
                ConstantValue source = Input(0);
                return new ConstantValue(source.FloatTensor.Renamed(y)) { Dequantized = source.Dequantized, Factors = source.Factors };
            }
            case "DequantizeLinear" when node.Inputs.Count is 2 or 3:
            {
                OnnxTensor codes = Input(0).FloatTensor, scale = Input(1).FloatTensor;
                OnnxTensor? zeroPoint = node.Inputs.Count == 3 && node.Inputs[2].Length > 0 ? Input(2).FloatTensor : null;
                long axis = node.Attributes.TryGetValue("axis", out OnnxAttributeValue? a) ? a.I : 1;
                return new ConstantValue(codes.Renamed(y)) { Dequantized = new Dequantization(codes, scale, zeroPoint, axis, node) };
            }
            case "Mul" when node.Inputs.Count == 2:
            {
                OnnxTensor a = Input(0).FloatTensor, b = Input(1).FloatTensor;
                return new ConstantValue(Multiply(node, a, b, file).Renamed(y)) { Factors = (a, b) };
            }
            default:
                throw new InvalidDataException(
                    $"{file}: {node.Label}: computes from constants only, which is supported for Constant, Identity, DequantizeLinear and Mul nodes.");
        }
    }

    // a b in float32 for two float tensors of the same shape, or one of them a single value.
    private static OnnxTensor Multiply(OnnxNode node, OnnxTensor a, OnnxTensor b, string file)
    {
        string context = $"{file}: {node.Label}";
        float[] x = a.ToFloats(context), z = b.ToFloats(context);
        if (x.Length != z.Length && x.Length != 1 && z.Length != 1)
        {
            throw new InvalidDataException($"{context}: multiplies constants of {x.Length} and {z.Length} values.");
        }
        OnnxTensor larger = x.Length >= z.Length ? a : b;
        float[] product = new float[Math.Max(x.Length, z.Length)];
        for (int i = 0; i < product.Length; i++)
        {
            product[i] = x[x.Length == 1 ? 0 : i] * z[z.Length == 1 ? 0 : i];
        }
        return OnnxTensor.FromFloats("", larger.Dims, product);
    }

    private static OnnxTensor Int64Tensor(string name, long[] dims, long[] values)
    {
        var writer = new Protobuf.ProtoWriter();
        OnnxGraphBuilder.WriteTensor(writer, name, OnnxDataType.Int64, [.. dims.Select(d => (int)d)], [], values, typed: true);
        return OnnxTensor.Read(writer.ToArray(), name);
    }
}
