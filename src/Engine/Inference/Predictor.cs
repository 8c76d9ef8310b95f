using CommunityToolkit.HighPerformance;
using CommunityToolkit.HighPerformance.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;
using Engine.Data;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Inference;

/// <summary>
/// The front door for inference: load any model file this engine writes (float, structurally pruned, int8) from a path,
/// a stream or bytes (an embedded resource), then predict from any number of threads at once. A predictor is
/// immutable: its parameters are read, never written, and each call's activations live in scratch rented for that call,
/// so after the first call of a given batch size it allocates nothing, on any thread.
/// <para>
/// Inputs must be finite. A NaN or an infinity would otherwise give different answers on the two paths (float spreads
/// a NaN to every logit; int8 would quantize it to a code), so <see cref="Predict(ReadOnlySpan{float}, int, Span{float})"/>,
/// and <see cref="Classify"/> and <see cref="TopK"/> through it, refuse such an input with an
/// <see cref="ArgumentException"/> naming the sample and the element, before any work and whatever the format. The
/// check is one vectorised pass over the input (TensorPrimitives.IsFiniteAll), small beside the network, and allocates
/// nothing.
/// </para>
/// <code>
/// var model = Predictor.Load("digits.int8.safetensors");
/// Span&lt;float&gt; input = stackalloc float[model.InputLength];
/// model.PreparePixels(pixels, 28, 28, input);          // 8-bit grey image, centred and normalised
/// int digit = model.Classify(input);
/// </code>
/// </summary>
public sealed class Predictor
{
    private readonly InferenceNetwork? _float;
    private readonly QuantizedNetwork? _int8;
    private readonly int[] _inputShape, _outputShape;
    private readonly int _outputLength;

    private Predictor(InferenceNetwork network, PredictorOptions options)
    {
        _float = network;
        _inputShape = network.InputShape.ToArray();
        _outputShape = network.OutputShape.ToArray();
        _outputLength = network.OutputLength;
        Format = ModelFormat.Float;
        Threads = options.Threads;
        Preprocessing = PreprocessingOf(_inputShape, network.InputMean, network.InputStd);
    }

    private Predictor(QuantizedNetwork network, PredictorOptions options)
    {
        _int8 = network;
        _inputShape = [.. network.InputShape];
        _outputShape = [.. network.OutputShape];
        _outputLength = _outputShape.Aggregate(1, (a, b) => a * b);
        Format = ModelFormat.Int8;
        Threads = options.Threads;
        Preprocessing = PreprocessingOf(_inputShape, network.InputMean, network.InputStd);
    }

    /// <summary>Which kind of model this is.</summary>
    public ModelFormat Format { get; }

    /// <summary>Per-sample input shape, for example [1, 32, 32].</summary>
    public ReadOnlySpan<int> InputShape => _inputShape;

    /// <summary>Per-sample output shape, for example [10].</summary>
    public ReadOnlySpan<int> OutputShape => _outputShape;

    /// <summary>Floats per input sample (the product of <see cref="InputShape"/>).</summary>
    public int InputLength => Preprocessing.Length;

    /// <summary>Floats per output sample (class scores: logits).</summary>
    public int OutputLength => _outputLength;

    /// <summary>How raw pixels become this model's input (normalisation and canvas size, from the file).</summary>
    public InputPreprocessing Preprocessing { get; }

    /// <summary>Threads one call may use (<see cref="PredictorOptions.Threads"/>).</summary>
    public int Threads { get; }

    /// <summary>The float network, when <see cref="Format"/> is <see cref="ModelFormat.Float"/> (read it, do not change it).</summary>
    public InferenceNetwork? FloatNetwork => _float;

    /// <summary>The integer network, when <see cref="Format"/> is <see cref="ModelFormat.Int8"/>.</summary>
    public QuantizedNetwork? QuantizedNetwork => _int8;

    /// <summary>Loads the model file at <paramref name="path"/>; a bad file gives an <see cref="InvalidDataException"/> naming it.</summary>
    public static Predictor Load(string path, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            throw new FileNotFoundException($"{path} is a directory, not a model file.", path);
        }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Load(stream, Path.GetFileName(path), options);
    }

    /// <summary>
    /// Loads a model from <paramref name="stream"/>, from its position to its end (a stream that cannot seek is first
    /// copied to memory); <paramref name="name"/> names it in errors. The file is read once: the format is told from its
    /// header, then the same read builds the network.
    /// </summary>
    public static Predictor Load(Stream stream, string name = "stream", PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
        {
            // A pipe or a network stream: gather it in pooled memory, which goes back to the pool once the model is built.
            using var buffer = new ArrayPoolBufferWriter<byte>();
            stream.CopyTo(buffer.AsStream());
            return Load(buffer.WrittenSpan, name, options);
        }
        ModelFormat format = DetectFormat(stream, name);
        RefuseOnnx(format, name);
        SafeTensorsFile file = SafeTensorsFile.Read(stream, name);
        return FromFile(file, format, name, options ?? new PredictorOptions());
    }

    /// <summary>Loads a model from its bytes (for example an embedded resource); <paramref name="name"/> names it in errors.</summary>
    public static Predictor Load(ReadOnlySpan<byte> bytes, string name = "model", PredictorOptions? options = null)
    {
        ModelFormat format = DetectFormat(bytes, name);
        RefuseOnnx(format, name);
        return FromFile(SafeTensorsFile.Read(bytes, name), format, name, options ?? new PredictorOptions());
    }

    /// <summary>
    /// A predictor over a copy of <paramref name="network"/> (training it further does not change the predictor), for
    /// samples of <paramref name="inputShape"/> normalised with <paramref name="inputMean"/> and <paramref name="inputStd"/>.
    /// </summary>
    public static Predictor FromNetwork(Sequential network, int[] inputShape, float inputMean, float inputStd, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        // The model file is the one faithful copy of a network: writing and reading it back in memory is the copy.
        FloatModel copy = ModelFile.LoadFloat(ModelFile.ToBytes(network, inputMean, inputStd, inputShape), "network");
        return new Predictor(new InferenceNetwork(copy.Network, copy.InputShape, copy.InputMean, copy.InputStd), options ?? new PredictorOptions());
    }

    /// <summary>A predictor over <paramref name="network"/>, which is immutable already.</summary>
    public static Predictor FromNetwork(QuantizedNetwork network, PredictorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        return new Predictor(network, options ?? new PredictorOptions());
    }

    /// <summary>
    /// The kind of model in <paramref name="bytes"/>, from its header alone: safetensors (an 8-byte little-endian header
    /// length, then a JSON object) with <c>format</c> engine.int8 or engine.float (or none, as PyTorch writes), or ONNX
    /// (a protobuf ModelProto, whose first field is <c>ir_version</c>). Anything else is refused.
    /// </summary>
    public static ModelFormat DetectFormat(ReadOnlySpan<byte> bytes, string name = "model")
    {
        if (LooksLikeOnnx(bytes))
        {
            return ModelFormat.Onnx;
        }
        RequireSafeTensors(bytes, name);
        return FormatOf(SafeTensorsFile.ReadMetadata(bytes, name), name);
    }

    /// <summary>As <see cref="DetectFormat(ReadOnlySpan{byte}, string)"/> for the file that starts at the seekable stream's position (restored afterwards).</summary>
    public static ModelFormat DetectFormat(Stream stream, string name = "stream")
    {
        Span<byte> prefix = stackalloc byte[9];
        long origin = stream.Position;
        int read = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        stream.Position = origin;
        if (LooksLikeOnnx(prefix[..read]))
        {
            return ModelFormat.Onnx;
        }
        RequireSafeTensors(prefix[..read], name);
        return FormatOf(SafeTensorsFile.ReadMetadata(stream, name), name);
    }

    /// <summary>
    /// outputs[samples, OutputShape] for normalised inputs[samples, InputShape] (see <see cref="PreparePixels"/>), on up to
    /// <see cref="Threads"/> threads. Thread-safe; the result does not depend on the thread count or the batch split.
    /// Every input must be finite: a NaN or an infinity throws an <see cref="ArgumentException"/> naming the first such
    /// sample and element, on the float and the int8 path alike, and nothing is written to <paramref name="outputs"/>.
    /// </summary>
    public void Predict(ReadOnlySpan<float> inputs, int samples, Span<float> outputs)
    {
        if (samples >= 0 && inputs.Length == (long)samples * InputLength && !TensorPrimitives.IsFiniteAll(inputs))
        {
            ThrowNonFinite(inputs, InputLength);
        }
        if (_float is not null)
        {
            _float.Predict(inputs, samples, outputs, Threads);
        }
        else
        {
            _int8!.Predict(inputs, samples, outputs, Threads);
        }
    }

    /// <summary>The class scores of one normalised input: output[OutputLength] for input[InputLength] (finite, as for the batch call).</summary>
    public void Predict(ReadOnlySpan<float> input, Span<float> output) => Predict(input, 1, output);

    /// <summary>The most likely class of one normalised input: argmax of its scores (the lowest class on ties).</summary>
    public int Classify(ReadOnlySpan<float> input)
    {
        using SpanOwner<float> scores = SpanOwner<float>.Allocate(OutputLength);   // pooled: nothing allocated once warm
        Predict(input, scores.Span);
        return ClassScores.ArgMax(scores.Span);
    }

    /// <summary>
    /// The <c>k = classes.Length</c> (at most <see cref="OutputLength"/>) most likely classes of one normalised input, best
    /// first, with their scores in <paramref name="scores"/> when it is given; returns k. Allocation-free.
    /// </summary>
    public int TopK(ReadOnlySpan<float> input, Span<int> classes, Span<float> scores = default)
    {
        using SpanOwner<float> all = SpanOwner<float>.Allocate(OutputLength);
        Predict(input, all.Span);
        return ClassScores.TopK(all.Span, classes, scores);
    }

    /// <summary>
    /// Writes this model's input for an image of <paramref name="height"/> x <paramref name="width"/> 8-bit pixels (any
    /// size up to the input canvas): <see cref="InputPreprocessing.Write"/> with the file's normalisation.
    /// </summary>
    public void PreparePixels(ReadOnlySpan<byte> pixels, int height, int width, Span<float> input) =>
        Preprocessing.Write(pixels, height, width, input);

    /// <summary>One line per layer, and the format.</summary>
    public override string ToString() => $"Predictor({Format}, input [{string.Join(", ", _inputShape)}], output [{string.Join(", ", _outputShape)}])";

    private static Predictor FromFile(SafeTensorsFile file, ModelFormat format, string name, PredictorOptions options)
    {
        if (format == ModelFormat.Int8)
        {
            return new Predictor(QuantizedModelFile.FromFile(file, name), options);
        }
        FloatModel model = ModelFile.FromFile(file, name);
        return new Predictor(new InferenceNetwork(model.Network, model.InputShape, model.InputMean, model.InputStd), options);
    }

    // Only on the error path: find the first non-finite element and say where it is.
    private static void ThrowNonFinite(ReadOnlySpan<float> inputs, int inputLength)
    {
        int i = 0;
        while (float.IsFinite(inputs[i]))
        {
            i++;
        }
        throw new ArgumentException(
            $"input sample {i / inputLength}, element {i % inputLength} is {inputs[i].ToString(CultureInfo.InvariantCulture)}: inputs must be finite numbers (NaN and infinity are refused).",
            nameof(inputs));
    }

    private static InputPreprocessing PreprocessingOf(int[] shape, float mean, float std) => shape.Length == 3
        ? new InputPreprocessing(mean, std, shape[0], shape[1], shape[2])
        : new InputPreprocessing(mean, std, 1, 1, shape.Aggregate(1, (a, b) => a * b));

    // A protobuf ModelProto opens with field 1 (ir_version) as a varint: tag byte 0x08, then a small version number.
    private static bool LooksLikeOnnx(ReadOnlySpan<byte> prefix) => prefix.Length >= 2 && prefix[0] == 0x08 && prefix[1] is > 0 and < 0x80;

    private static void RequireSafeTensors(ReadOnlySpan<byte> prefix, string name)
    {
        if (prefix.Length < 9 || prefix[8] != (byte)'{' || BinaryPrimitives.ReadUInt64LittleEndian(prefix) < 2)
        {
            throw new InvalidDataException(
                $"{name}: not a model file: neither safetensors (an 8-byte header length, then a JSON header) nor ONNX.");
        }
    }

    private static ModelFormat FormatOf(IReadOnlyDictionary<string, string> metadata, string name)
    {
        if (!metadata.TryGetValue("format", out string? format) || format == ModelFile.FloatFormat)
        {
            return ModelFormat.Float;
        }
        if (format == QuantizedModelFile.Int8Format)
        {
            return ModelFormat.Int8;
        }
        throw new InvalidDataException(format == GradientStatisticsFile.Format
            ? $"{name}: gradient statistics ({format}), not a model."
            : $"{name}: format '{format}' is not a model this engine reads ({ModelFile.FloatFormat} or {QuantizedModelFile.Int8Format}).");
    }

    private static void RefuseOnnx(ModelFormat format, string name)
    {
        if (format == ModelFormat.Onnx)
        {
            // The core library stays on its two packages; ONNX parsing lives in its own assembly.
            throw new InvalidDataException($"{name}: an ONNX model; load it with the Engine.Onnx library (OnnxModel).");
        }
    }
}
