using Engine.Kernels;

namespace Engine.Layers;

/// <summary>
/// A float network prepared for inference only: no backward caches, parameters read and never written, so one instance
/// serves any number of threads at once. Per-call activations live in <see cref="InferenceWorkspace"/>s rented from a
/// pool for the length of the call. A batch is split between threads, each running every layer on its share of the
/// samples (so activations stay in that core's cache); a batch smaller than the thread count lets the layers split their
/// own work instead (a convolution's output panels, a linear layer's outputs). After the first call of a given size
/// nothing is allocated. The float counterpart of the int8 QuantizedNetwork, with the same shape.
/// </summary>
public sealed unsafe class InferenceNetwork
{
    private readonly (string Name, Layer Layer)[] _layers;
    private readonly int[][] _sampleShapes;   // _sampleShapes[i]: the per-sample input shape of layer i; [^1]: the output
    private readonly int[] _sampleSizes;
    private readonly int _largestActivation;
    private readonly WorkspacePool<InferenceWorkspace> _workspaces = new();
    private readonly Step[] _steps;

    // Layers [First, First + Count) run as one step: alone (Count 1, Epilogue null), or a convolution fused with the ReLU
    // and/or average pooling after it (Conv2d.InferFused). ChainsWithNext: this fused step (a shallow convolution on the
    // direct kernel) and the next (a Winograd convolution) run together sample by sample (Conv2d.InferChained) when the
    // layers are not splitting their own work between threads.
    private readonly record struct Step(int First, int Count, Conv2d.FusedEpilogue? Epilogue, bool ChainsWithNext = false);

    // A Conv2d followed by a ReLU, an AvgPool2d with stride equal to its window, or both, becomes one fused step where the
    // convolution can run it (Conv2d.CanFuse); every other layer is a step of its own.
    private Step[] Plan(bool fuse, bool chain)
    {
        var steps = new List<Step>();
        for (int i = 0; i < _layers.Length;)
        {
            if (fuse && _layers[i].Layer is Conv2d conv)
            {
                int next = i + 1;
                bool relu = next < _layers.Length && _layers[next].Layer is ReLU;
                if (relu)
                {
                    next++;
                }
                int pool = 1;
                if (next < _layers.Length && _layers[next].Layer is AvgPool2d { KernelSize: var k, Stride: var s } && k == s)
                {
                    pool = k;
                    next++;
                }
                var epilogue = new Conv2d.FusedEpilogue(relu, pool);
                if (next > i + 1 && conv.CanFuse(_sampleShapes[i], epilogue))
                {
                    steps.Add(new Step(i, next - i, epilogue));
                    i = next;
                    continue;
                }
            }
            steps.Add(new Step(i, 1, null));
            i++;
        }
        for (int k = 0; chain && k + 1 < steps.Count; k++)
        {
            if (steps[k].Epilogue is { } first && steps[k + 1].Epilogue is { } second
                && _layers[steps[k].First].Layer is Conv2d producer && _layers[steps[k + 1].First].Layer is Conv2d consumer
                && consumer.CanChainAfter(producer, _sampleShapes[steps[k].First], first, second))
            {
                steps[k] = steps[k] with { ChainsWithNext = true };
                k++;
            }
        }
        return [.. steps];
    }

    /// <summary>How many fused steps run chained with the next (Conv2d.InferChained): for tests and benchmarks.</summary>
    internal int ChainedSteps => _steps.Count(s => s.ChainsWithNext);

    /// <summary>How many layers run fused with a convolution (0 when nothing is fused): for tests and benchmarks.</summary>
    internal int FusedLayers => _steps.Where(s => s.Epilogue is not null).Sum(s => s.Count);

    /// <summary>
    /// Takes <paramref name="network"/> over for inference on samples of shape <paramref name="inputShape"/> (for example
    /// [1, 32, 32]), checking that the layers fit together and preparing each one. The caller must not change the
    /// network's parameters afterwards (load a fresh copy to train).
    /// </summary>
    public InferenceNetwork(Sequential network, int[] inputShape, float inputMean, float inputStd)
        : this(network, inputShape, inputMean, inputStd, fuse: true)
    {
    }

    /// <summary>
    /// As the public constructor; <paramref name="fuse"/> false runs every layer on its own (the reference the fused steps
    /// are tested and benchmarked against); <paramref name="chain"/> false keeps a shallow convolution and the Winograd
    /// convolution after it as two steps (Conv2d.InferChained's reference).
    /// </summary>
    internal InferenceNetwork(Sequential network, int[] inputShape, float inputMean, float inputStd, bool fuse, bool chain = true)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Length == 0 || inputShape.Any(d => d <= 0))
        {
            throw new ArgumentException($"input shape {FloatTensor.Format(inputShape)} needs positive sizes.", nameof(inputShape));
        }
        if (!float.IsFinite(inputMean) || !(inputStd > 0f) || !float.IsFinite(inputStd))
        {
            throw new ArgumentException($"input normalisation needs a finite mean and a finite positive std, got {inputMean} and {inputStd}.");
        }
        Network = network;
        _layers = [.. network.Layers];
        _sampleShapes = new int[_layers.Length + 1][];
        _sampleShapes[0] = [.. inputShape];
        long largest = SizeOf(inputShape);
        for (int i = 0; i < _layers.Length; i++)
        {
            try
            {
                _sampleShapes[i + 1] = _layers[i].Layer.SampleOutputShape(_sampleShapes[i]);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"layer '{_layers[i].Name}': {e.Message}", e);
            }
            largest = Math.Max(largest, SizeOf(_sampleShapes[i + 1]));
        }
        _sampleSizes = [.. _sampleShapes.Select(s => (int)SizeOf(s))];
        _largestActivation = (int)largest;
        foreach ((_, Layer layer) in _layers)
        {
            layer.PrepareInference();
        }
        _steps = Plan(fuse, chain);
        InputMean = inputMean;
        InputStd = inputStd;
    }

    /// <summary>The network it runs (read it, do not change it).</summary>
    public Sequential Network { get; }

    /// <summary>Per-sample input shape, for example [1, 32, 32].</summary>
    public ReadOnlySpan<int> InputShape => _sampleShapes[0];

    /// <summary>Per-sample output shape, for example [10].</summary>
    public ReadOnlySpan<int> OutputShape => _sampleShapes[^1];

    /// <summary>Floats per input sample.</summary>
    public int InputLength => _sampleSizes[0];

    /// <summary>Floats per output sample.</summary>
    public int OutputLength => _sampleSizes[^1];

    /// <summary>The input normalisation the network was trained with: (pixel / 255 - mean) / std.</summary>
    public float InputMean { get; }

    /// <summary>See <see cref="InputMean"/>.</summary>
    public float InputStd { get; }

    /// <summary>
    /// outputs[samples, OutputShape] for normalised inputs[samples, InputShape], on up to <paramref name="threads"/>
    /// threads. The result does not depend on the thread count.
    /// </summary>
    public void Predict(ReadOnlySpan<float> inputs, int samples, Span<float> outputs, int threads)
    {
        WorkPartition.CheckThreads(threads);
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        if (inputs.Length != (long)samples * InputLength || outputs.Length != (long)samples * OutputLength)
        {
            throw new ArgumentException(
                $"predict: {samples} samples need {samples * (long)InputLength} inputs and {samples * (long)OutputLength} outputs, got {inputs.Length} and {outputs.Length}.");
        }
        if (samples == 0)
        {
            return;
        }
        int parts = WorkPartition.PartitionCount(threads, samples);
        InferenceWorkspace[] workspaces = _workspaces.Rent(parts);
        try
        {
            // A single partition (one sample, or one thread): its layers may split their own work across every thread.
            workspaces[0].LayerThreads = parts == 1 ? threads : 1;
            fixed (float* x = inputs, y = outputs)
            {
                WorkPartition.Run(parts, samples, 1, new PredictWork(this, x, y, workspaces));
            }
        }
        finally
        {
            _workspaces.Return(workspaces);
        }
    }

    // One partition: samples [start, end) through every layer, ping-ponging between two activation buffers.
    private void Run(float* inputs, float* outputs, int start, int end, InferenceWorkspace workspace)
    {
        int n = end - start;
        var input = new ReadOnlySpan<float>(inputs + (long)start * InputLength, n * InputLength);
        var output = new Span<float>(outputs + (long)start * OutputLength, n * OutputLength);
        Span<float> current = workspace.ActivationA(n * _largestActivation);
        Span<float> next = workspace.ActivationB(n * _largestActivation);
        for (int s = 0; s < _steps.Length; s++)
        {
            Step step = _steps[s];
            int i = step.First, after = step.First + step.Count;
            // Chained only where the two steps would not split the sample between threads anyway (at batch 1 on two
            // threads neither conv1 nor a Winograd conv2 of this size does: then the chain is the faster path).
            bool chained = step.ChainsWithNext
                           && !((Conv2d)_layers[_steps[s + 1].First].Layer).SplitsUnchained((Conv2d)_layers[i].Layer, _sampleShapes[i], workspace);
            if (chained)
            {
                after = _steps[s + 1].First + _steps[s + 1].Count;
            }
            ReadOnlySpan<float> source = i == 0 ? input : current[..(n * _sampleSizes[i])];
            Span<float> target = after == _layers.Length ? output : next[..(n * _sampleSizes[after])];
            if (chained)
            {
                ((Conv2d)_layers[_steps[s + 1].First].Layer).InferChained((Conv2d)_layers[i].Layer, step.Epilogue!.Value, source,
                    _sampleShapes[i], n, target, workspace, _steps[s + 1].Epilogue!.Value);
                s++;
            }
            else if (step.Epilogue is { } epilogue)
            {
                ((Conv2d)_layers[i].Layer).InferFused(source, _sampleShapes[i], n, target, workspace, epilogue);
            }
            else
            {
                _layers[i].Layer.Infer(source, _sampleShapes[i], n, target, workspace);
            }
            Span<float> swap = current;
            current = next;
            next = swap;
        }
    }

    private static long SizeOf(ReadOnlySpan<int> shape)
    {
        long size = 1;
        foreach (int d in shape)
        {
            size = checked(size * d);
        }
        return size <= int.MaxValue ? size : throw new ArgumentException($"a sample of shape {FloatTensor.Format(shape)} has more than {int.MaxValue} values.");
    }

    /// <summary>One line per layer.</summary>
    public override string ToString() => Network.ToString();

    private readonly struct PredictWork(InferenceNetwork network, float* inputs, float* outputs, InferenceWorkspace[] workspaces) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) => network.Run(inputs, outputs, start, end, workspaces[partition]);
    }
}
