using Engine.Data;
using Engine.Layers;
using Engine.Training;

namespace Engine.Quantization;

/// <summary>
/// Quantization-aware training (Jacob et al. 2018, arXiv:1712.05877; docs/quantization.md, "Quantization-aware
/// training"): fine-tunes a float network while its forward pass computes with the values the integer network will
/// hold, so that the weights learn to live with the rounding, then hands the network and the learned activation
/// ranges to <see cref="Quantizer.Quantize(Sequential, IReadOnlyList{ValueTuple{float, float}}, int[], float, float, QuantizationOptions?)"/>.
/// <list type="bullet">
/// <item>Weights: shadow float weights. After each optimiser step (<see cref="OnStep"/>) the float weights are kept
/// aside and the layers get <see cref="Quantizer.FakeQuantizeWeights"/> of them (per channel symmetric or per tensor
/// asymmetric, at the layer's bits); the gradients are computed at those values, and before the next step
/// (<see cref="OnGradients"/>) the float weights come back, so the step updates them: the straight-through estimator
/// for weights (the quantized weights' gradient applied to the float ones).</item>
/// <item>Activations: a <see cref="FakeQuantize"/> stage wherever the integer network quantizes (the network input, each
/// weighted layer's output after its fused ReLU) and a <see cref="FakeQuantizePoolRounding"/> after each average pool.
/// Their observers follow the activations for <see cref="FreezeObserversAfterSteps"/> optimiser steps and are then
/// frozen, so the last steps train against the ranges the integer network will use.</item>
/// </list>
/// <see cref="Network"/> shares its layers (and parameters) with the float network it was built from.
/// </summary>
public sealed class QuantizationAwareTraining : ITrainingObserver
{
    /// <summary>Optimiser steps the observers follow the activations before they freeze, unless told otherwise.</summary>
    public const int DefaultFreezeSteps = 100;

    private readonly Sequential _float;
    private readonly QuantizationOptions _options;
    private readonly ShadowWeight[] _weights;
    private readonly FakeQuantize[] _activations;

    /// <summary>
    /// Prepares <paramref name="network"/> (conv, linear, ReLU, average pool and flatten layers, as
    /// <see cref="Quantizer"/> accepts) for quantization-aware training with the weight and logits settings of
    /// <paramref name="options"/>, activation observers of kind <paramref name="observer"/> that freeze after
    /// <paramref name="freezeObserversAfterSteps"/> optimiser steps (at least 1).
    /// </summary>
    public QuantizationAwareTraining(Sequential network, QuantizationOptions? options = null, ObserverKind observer = ObserverKind.MovingAverage,
        int freezeObserversAfterSteps = DefaultFreezeSteps)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentOutOfRangeException.ThrowIfLessThan(freezeObserversAfterSteps, 1);
        _float = network;
        _options = options ?? new QuantizationOptions();
        FreezeObserversAfterSteps = freezeObserversAfterSteps;
        var weights = new List<ShadowWeight>();
        var activations = new List<FakeQuantize>();
        var input = new FakeQuantize(ActivationObserver.Create(observer));
        activations.Add(input);
        var layers = new List<(string, Layer)> { ("input_fake_quant", input) };
        FakeQuantize current = input;
        var floatLayers = network.Layers;
        for (int i = 0; i < floatLayers.Count; i++)
        {
            (string name, Layer layer) = floatLayers[i];
            layers.Add((name, layer));
            switch (layer)
            {
                case Conv2d or Linear:
                {
                    var weighted = (WeightedLayer)layer;
                    weights.Add(new ShadowWeight(weighted.Weight, weighted.Weight.Value.Dim(0), _options.WeightBitsOf(name)));
                    if (i + 1 < floatLayers.Count && floatLayers[i + 1].Layer is ReLU)
                    {
                        layers.Add(floatLayers[++i]);
                    }
                    // The int32-accumulator logits of the last layer are rescaled, never requantized: observe only.
                    bool last = i == floatLayers.Count - 1;
                    current = new FakeQuantize(ActivationObserver.Create(observer), quantize: !(last && _options.Logits == LogitsMode.Int32Accumulator));
                    activations.Add(current);
                    layers.Add(($"{name}_fake_quant", current));
                    break;
                }
                case AvgPool2d pool:
                    layers.Add(($"{name}_fake_quant", new FakeQuantizePoolRounding(current, pool.KernelSize)));
                    break;
                case ReLU or Flatten:
                    break;
                default:
                    throw new NotSupportedException($"layer '{name}' ({layer}) has no int8 version.");
            }
        }
        _weights = [.. weights];
        _activations = [.. activations];
        Network = new Sequential([.. layers]) { Threads = network.Threads };
    }

    /// <summary>The network with fake-quantization stages, sharing its layers with the float network.</summary>
    public Sequential Network { get; }

    /// <summary>The float network it was built from (holding fake-quantized weights while <see cref="WeightsFakeQuantized"/>).</summary>
    public Sequential FloatNetwork => _float;

    /// <summary>The activation stages: the network input's first, then each weighted layer's output.</summary>
    public IReadOnlyList<FakeQuantize> Activations => _activations;

    /// <summary>Optimiser steps the observers follow the activations before they freeze.</summary>
    public int FreezeObserversAfterSteps { get; }

    /// <summary>Optimiser steps seen so far.</summary>
    public int Steps { get; private set; }

    /// <summary>Whether the observers are frozen (their ranges no longer change).</summary>
    public bool ObserversFrozen { get; private set; }

    /// <summary>Whether the weighted layers hold fake-quantized weights (the float ones kept aside).</summary>
    public bool WeightsFakeQuantized { get; private set; }

    /// <summary>The activation ranges: the network input's, then each weighted layer's output (the order the quantizer takes).</summary>
    public IReadOnlyList<(float Min, float Max)> ActivationRanges => [.. _activations.Select(a => a.Observer.Range)];

    /// <summary>Keeps the float weights aside and writes their fake-quantized values into the layers (no-op when already done).</summary>
    public void FakeQuantizeWeights()
    {
        if (WeightsFakeQuantized)
        {
            return;
        }
        foreach (ShadowWeight w in _weights)
        {
            Span<float> value = w.Weight.Value.Data;
            value.CopyTo(w.Float);
            Quantizer.FakeQuantizeWeights(w.Float, w.OutChannels, _options.PerChannel, w.Bits, value);
        }
        WeightsFakeQuantized = true;
    }

    /// <summary>Puts the float weights back (no-op when they are there).</summary>
    public void RestoreFloatWeights()
    {
        if (!WeightsFakeQuantized)
        {
            return;
        }
        foreach (ShadowWeight w in _weights)
        {
            w.Float.CopyTo(w.Weight.Value.Data);
        }
        WeightsFakeQuantized = false;
    }

    /// <summary>Stops the observers: the ranges stay as they are.</summary>
    public void FreezeObservers()
    {
        ObserversFrozen = true;
        SetObserving(false);
    }

    /// <summary>
    /// Fine-tunes with <see cref="Trainer"/> and <paramref name="options"/>: weights fake-quantized from the first step,
    /// observers frozen after <see cref="FreezeObserversAfterSteps"/> steps and never fed the test images. Afterwards the
    /// weights stay fake-quantized, so <see cref="Network"/> computes what the integer network will.
    /// </summary>
    public IReadOnlyList<EpochReport> Train(IBatchSource train, TrainingOptions options, IBatchSource? test = null,
        ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        FakeQuantizeWeights();
        SetObserving(!ObserversFrozen);
        return new Trainer(Network, options).Run(train, test, new ObserverList(this, observer), cancel);
    }

    /// <summary>
    /// The integer network: codes of the float weights (the ones whose dequantized values training computed with) and
    /// the observers' ranges, through <see cref="Quantizer.Quantize(Sequential, IReadOnlyList{ValueTuple{float, float}}, int[], float, float, QuantizationOptions?)"/>.
    /// Freezes the observers; the weights are left as they were.
    /// </summary>
    public QuantizedNetwork ToQuantizedNetwork(int[] sampleShape, float inputMean, float inputStd)
    {
        FreezeObservers();
        bool wasFake = WeightsFakeQuantized;
        RestoreFloatWeights();
        QuantizedNetwork quantized = Quantizer.Quantize(_float, ActivationRanges, sampleShape, inputMean, inputStd, _options);
        if (wasFake)
        {
            FakeQuantizeWeights();
        }
        return quantized;
    }

    /// <inheritdoc/>
    public void OnGradients(Sequential network) => RestoreFloatWeights();

    /// <inheritdoc/>
    public void OnStep(Sequential network)
    {
        Steps++;
        if (!ObserversFrozen && Steps >= FreezeObserversAfterSteps)
        {
            FreezeObservers();
        }
        FakeQuantizeWeights();
    }

    /// <inheritdoc/>
    public void OnBatch(in BatchReport report)
    {
        // The trainer evaluates on the test images after an epoch's last batch: they must not move the ranges.
        if (report.Batch == report.Batches)
        {
            SetObserving(false);
        }
    }

    /// <inheritdoc/>
    public void OnEpoch(in EpochReport report) => SetObserving(!ObserversFrozen);

    private void SetObserving(bool observing)
    {
        foreach (FakeQuantize a in _activations)
        {
            a.Observing = observing;
        }
    }

    private sealed record ShadowWeight(Parameter Weight, int OutChannels, int Bits)
    {
        public float[] Float { get; } = new float[Weight.Value.Length];
    }
}
