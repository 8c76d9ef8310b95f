using Engine.Data;
using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>How the last layer's result becomes float logits (the int8 file's <c>logits</c> metadata).</summary>
public enum LogitsMode
{
    /// <summary>
    /// The last layer's int32 accumulators times input_scale x weight_scale[c] are the logits: no output rounding,
    /// so ties between classes stay as rare as in float (the default).
    /// </summary>
    Int32Accumulator,

    /// <summary>The last layer requantizes to uint8 codes like every other layer, and the logits are those codes dequantized.</summary>
    DequantizedOutput,
}

/// <summary>
/// A network that runs on integers from its input quantization to its output dequantization: float images in,
/// uint8 codes through every layer (int8 weights, int32 accumulation, fixed-point requantization), float logits out.
/// Batches are split across the threads the caller allows, each running every layer on its share of the
/// samples with its own workspace, so threads meet only at the end. Thread-safe: concurrent callers get separate
/// workspaces from a pool, and after the first call of a size nothing is allocated.
/// </summary>
public sealed unsafe class QuantizedNetwork
{
    private readonly QuantizedLayer[] _layers;
    private readonly int[][] _sampleShapes;          // _sampleShapes[i]: the per-sample input shape of layer i; [^1]: the output
    private readonly int _largestActivation;
    private readonly WorkspacePool<QuantizedWorkspace> _workspaces = new();
    private readonly int[] _fusedPooling;            // _fusedPooling[i] > 0: layer i is a convolution that runs with the pooling after it
    private readonly bool _fusesPooling;

    /// <summary>A network of <paramref name="layers"/> for inputs of per-sample shape <paramref name="inputShape"/>, checked end to end.</summary>
    public QuantizedNetwork(IReadOnlyList<QuantizedLayer> layers, QuantParams input, int[] inputShape, float inputMean, float inputStd,
        LogitsMode logits)
    {
        if (layers.Count == 0)
        {
            throw new ArgumentException("a quantized network needs at least one layer.", nameof(layers));
        }
        if (input.QMin != 0 || input.QMax != 255 || input.ZeroPoint < 0 || input.ZeroPoint > 255 || !(input.Scale > 0f) || !float.IsFinite(input.Scale))
        {
            throw new ArgumentException($"input quantization {input} is not a valid uint8 quantization.", nameof(input));
        }
        _layers = [.. layers];
        Input = input;
        InputShape = inputShape;
        InputMean = inputMean;
        InputStd = inputStd;
        Logits = logits;
        _sampleShapes = new int[_layers.Length + 1][];
        _sampleShapes[0] = inputShape;
        int largest = QuantizedLayer.Size(inputShape);
        for (int i = 0; i < _layers.Length; i++)
        {
            try
            {
                _sampleShapes[i + 1] = _layers[i].OutputShape(_sampleShapes[i]);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"layer '{_layers[i].Name}': {e.Message}", e);
            }
            largest = Math.Max(largest, QuantizedLayer.Size(_sampleShapes[i + 1]));
        }
        if (logits == LogitsMode.Int32Accumulator && _layers[^1] is not QuantizedWeightedLayer)
        {
            throw new ArgumentException($"int32_accumulator logits need a weighted last layer, not {_layers[^1]}.", nameof(logits));
        }
        _largestActivation = largest;
        // conv -> average pooling (window = stride, no padding): pooled a band of rows at a time, while the band's codes
        // are in cache (QuantizedConv2d.ForwardPooled); the pooling layer is then skipped.
        _fusedPooling = new int[_layers.Length];
        for (int i = 0; i + 1 < _layers.Length; i++)
        {
            if (_layers[i] is QuantizedConv2d conv && _layers[i + 1] is QuantizedAvgPool2d pool && pool.Stride == pool.KernelSize
                && conv.CanFusePooling(_sampleShapes[i], pool.KernelSize))
            {
                _fusedPooling[i] = pool.KernelSize;
                _fusesPooling = true;
            }
        }
    }

    /// <summary>
    /// Runs every layer on its own, as the int8 path did before the fused and direct kernels: convolutions through the GEMM
    /// (<see cref="QuantizedConv2d.ForwardViaGemm"/>), pooling as a separate pass, one thread per sample. The reference the
    /// fused path is tested against byte for byte, and the baseline of the benchmarks. Not for concurrent use with Predict.
    /// </summary>
    internal bool Unfused { get; set; }

    /// <summary>
    /// Whether a single sample on several threads splits the bands of the pooled convolution (conv2) between them
    /// (<see cref="QuantizedConv2d.ForwardPooled"/>). On by default: on a quiet machine a single image took 156-157 us
    /// split on two threads against 201-202 us on one (engine bench) (docs/quantization.md, "12. Batch 1 on two threads"). The results
    /// are the same bytes either way (tests). Benchmarks turn it off to compare. Not for concurrent use with Predict.
    /// </summary>
    internal bool SplitSingleSample { get; set; } = true;

    /// <summary>The layers, first to last.</summary>
    public IReadOnlyList<QuantizedLayer> Layers => _layers;

    /// <summary>Quantization of the (normalised) network input.</summary>
    public QuantParams Input { get; }

    /// <summary>Per-sample input shape, for example [1, 32, 32].</summary>
    public int[] InputShape { get; }

    /// <summary>Per-sample output shape, for example [10].</summary>
    public int[] OutputShape => _sampleShapes[^1];

    /// <summary>The input normalisation the float network was trained with: (pixel / 255 - mean) / std.</summary>
    public float InputMean { get; }

    /// <summary>See <see cref="InputMean"/>.</summary>
    public float InputStd { get; }

    /// <summary>How the logits are read off the last layer.</summary>
    public LogitsMode Logits { get; }

    /// <summary>
    /// logits[samples, OutputShape] for normalised inputs[samples, InputShape]: quantize, integer layers, dequantize,
    /// on up to <see cref="WorkPartition.DefaultThreads"/> threads.
    /// </summary>
    public void Predict(ReadOnlySpan<float> inputs, int samples, Span<float> logits) =>
        Predict(inputs, samples, logits, WorkPartition.DefaultThreads);

    /// <summary>
    /// logits[samples, OutputShape] for normalised inputs[samples, InputShape] on up to <paramref name="threads"/>
    /// threads (the samples are split between them; the result does not depend on the split).
    /// </summary>
    public void Predict(ReadOnlySpan<float> inputs, int samples, Span<float> logits, int threads)
    {
        WorkPartition.CheckThreads(threads);
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        int inSize = QuantizedLayer.Size(InputShape), outSize = QuantizedLayer.Size(OutputShape);
        if (inputs.Length != (long)samples * inSize || logits.Length != (long)samples * outSize)
        {
            throw new ArgumentException(
                $"predict: {samples} samples need {samples * (long)inSize} inputs and {samples * (long)outSize} logits, got {inputs.Length} and {logits.Length}.");
        }
        if (samples == 0)
        {
            return;
        }
        // Samples are split between the threads. A single sample runs on the calling thread alone unless
        // SplitSingleSample asks for its fused convolution's bands to be split (docs/quantization.md, "12. Batch 1 on two threads").
        int parts = WorkPartition.PartitionCount(threads, samples);
        int bandThreads = parts == 1 && SplitSingleSample && !Unfused && _fusesPooling ? threads : 1;
        QuantizedWorkspace[] workspaces = _workspaces.Rent(Math.Max(parts, bandThreads));
        try
        {
            fixed (float* x = inputs, y = logits)
            {
                WorkPartition.Run(parts, samples, 1, new PredictWork(this, x, y, workspaces, bandThreads));
            }
        }
        finally
        {
            _workspaces.Return(workspaces);
        }
    }

    /// <summary>Class scores of one normalised image: <see cref="Predict(ReadOnlySpan{float}, int, Span{float})"/> with one sample.</summary>
    public void Predict(ReadOnlySpan<float> input, Span<float> logits) => Predict(input, 1, logits);

    /// <summary>
    /// Every layer's output codes for <paramref name="samples"/> inputs ([samples, shape] each, the network input's codes
    /// first), for reports and teaching; allocates.
    /// </summary>
    public IReadOnlyList<(string Name, int[] SampleShape, QuantParams Parameters, byte[] Codes)> Trace(ReadOnlySpan<float> inputs, int samples)
    {
        var workspace = new QuantizedWorkspace();
        byte[] codes = new byte[samples * QuantizedLayer.Size(InputShape)];
        QuantizeF32.ToUInt8(inputs[..codes.Length], Input, codes);
        var trace = new List<(string, int[], QuantParams, byte[])> { ("input", InputShape, Input, codes) };
        for (int i = 0; i < _layers.Length; i++)
        {
            byte[] next = new byte[samples * QuantizedLayer.Size(_sampleShapes[i + 1])];
            if (Unfused && _layers[i] is QuantizedConv2d conv)
            {
                conv.ForwardViaGemm(codes, _sampleShapes[i], samples, next, workspace);
            }
            else
            {
                _layers[i].Forward(codes, _sampleShapes[i], samples, next, workspace);
            }
            trace.Add((_layers[i].Name, _sampleShapes[i + 1], _layers[i].Output, next));
            codes = next;
        }
        return trace;
    }

    /// <summary>Fraction of <paramref name="data"/> whose arg-max logit is the label, and the predicted classes.</summary>
    public (float Accuracy, int[] Predictions) Evaluate(IBatchSource data, int batchSize = 250) =>
        Evaluate(data, batchSize, WorkPartition.DefaultThreads);

    /// <summary>As <see cref="Evaluate(IBatchSource, int)"/> on up to <paramref name="threads"/> threads.</summary>
    public (float Accuracy, int[] Predictions) Evaluate(IBatchSource data, int batchSize, int threads)
    {
        int classes = QuantizedLayer.Size(OutputShape), sampleSize = QuantizedLayer.Size(InputShape);
        float[] inputs = new float[batchSize * sampleSize], logits = new float[batchSize * classes];
        int[] labels = new int[batchSize], predictions = new int[data.Count];
        long correct = 0;
        for (int b = 0, start = 0; start < data.Count; b++, start += batchSize)
        {
            int count = data.FillBatch(0, b, batchSize, inputs, labels);
            Predict(inputs.AsSpan(0, count * sampleSize), count, logits.AsSpan(0, count * classes), threads);
            for (int n = 0; n < count; n++)
            {
                predictions[start + n] = ClassScores.ArgMax(logits.AsSpan(n * classes, classes));
                correct += predictions[start + n] == labels[n] ? 1 : 0;
            }
        }
        return (data.Count == 0 ? float.NaN : (float)correct / data.Count, predictions);
    }

    /// <summary>One line per layer.</summary>
    public override string ToString() =>
        $"QuantizedNetwork(input scale={Input.Scale:G6} zero_point={Input.ZeroPoint}, logits={Logits}\n" +
        string.Concat(_layers.Select(l => $"  ({l.Name}): {l}\n")) + ")";

    // One partition: samples [start, end) through every layer, ping-ponging between two activation buffers. The fused
    // convolution may split its bands between workspaces[first .. first + bandThreads).
    private void Run(float* inputs, float* logits, int start, int end, QuantizedWorkspace[] workspaces, int first, int bandThreads)
    {
        QuantizedWorkspace workspace = workspaces[first];
        int n = end - start, inSize = QuantizedLayer.Size(InputShape), outSize = QuantizedLayer.Size(OutputShape);
        Span<byte> current = workspace.ActivationA(n * _largestActivation);
        Span<byte> next = workspace.ActivationB(n * _largestActivation);
        QuantizeF32.ToUInt8(new ReadOnlySpan<float>(inputs + (long)start * inSize, n * inSize), Input, current[..(n * inSize)]);
        var output = new Span<float>(logits + (long)start * outSize, n * outSize);
        for (int i = 0; i < _layers.Length; i++)
        {
            int size = n * QuantizedLayer.Size(_sampleShapes[i]);
            if (i == _layers.Length - 1 && Logits == LogitsMode.Int32Accumulator)
            {
                ((QuantizedWeightedLayer)_layers[i]).ForwardAccumulators(current[..size], _sampleShapes[i], n, output, workspace);
                return;
            }
            if (Unfused && _layers[i] is QuantizedConv2d conv)
            {
                conv.ForwardViaGemm(current[..size], _sampleShapes[i], n, next, workspace);
            }
            else if (!Unfused && _fusedPooling[i] > 0)
            {
                ((QuantizedConv2d)_layers[i]).ForwardPooled(current[..size], _sampleShapes[i], n, _fusedPooling[i], next, workspaces, first, bandThreads);
                i++;                                                                 // the pooling is done
            }
            else
            {
                _layers[i].Forward(current[..size], _sampleShapes[i], n, next, workspace);
            }
            Span<byte> swap = current;
            current = next;
            next = swap;
        }
        QuantParams last = _layers[^1].Output;
        for (int j = 0; j < output.Length; j++)
        {
            output[j] = last.Dequantize(current[j]);
        }
    }

    private readonly struct PredictWork(QuantizedNetwork network, float* inputs, float* logits, QuantizedWorkspace[] workspaces, int bandThreads)
        : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) =>
            network.Run(inputs, logits, start, end, workspaces, partition, bandThreads);
    }
}
