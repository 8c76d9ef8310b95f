using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Quantization;

/// <summary>
/// Fake quantization of an activation tensor for quantization-aware training (Jacob et al. 2018, "Quantization and
/// Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", arXiv:1712.05877, section 3):
/// forward y = s (clamp(round_half_away(x / s) + z, 0, 255) - z), the float image of the uint8 code the integer
/// network stores (<see cref="QuantParams.Quantize"/>, <see cref="QuantParams.Dequantize"/>), with s and z from
/// <see cref="Quantizer.ToActivation"/> of the <see cref="Observer"/>'s range. Backward is the straight-through
/// estimator (Bengio et al. 2013, arXiv:1308.3432): dx = dy where the unclamped code round_half_away(x / s) + z lies
/// in [0, 255], 0 where the clamp cut it (PyTorch's FakeQuantize uses the same mask).
/// <para>
/// While <see cref="Observing"/> (training, before the observers are frozen) every forward pass first feeds its input
/// to the observer, so the range follows the activations as the weights learn; <see cref="QuantizationAwareTraining"/>
/// turns it off. A layer built with <c>quantize: false</c> only observes and passes values through: the logits read
/// off the int32 accumulators are never requantized (<see cref="LogitsMode.Int32Accumulator"/>).
/// </para>
/// </summary>
public sealed class FakeQuantize : Layer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _pass = new(0);            // 1 where the straight-through gradient passes, else 0
    private readonly FloatTensor _inputGradient = new(0);
    private bool _hasForward;

    /// <summary>A fake-quantization stage whose range <paramref name="observer"/> records; <paramref name="quantize"/> false: observe only.</summary>
    public FakeQuantize(ActivationObserver observer, bool quantize = true)
    {
        Observer = observer ?? throw new ArgumentNullException(nameof(observer));
        Quantizes = quantize;
    }

    /// <summary>Records the range the codes span.</summary>
    public ActivationObserver Observer { get; }

    /// <summary>Whether forward passes feed the observer (true until the observers are frozen).</summary>
    public bool Observing { get; set; } = true;

    /// <summary>Whether the values are fake-quantized (false: observed and passed through unchanged).</summary>
    public bool Quantizes { get; }

    /// <summary>The uint8 parameters of the observer's current range; throws before anything was observed.</summary>
    public QuantParams Activation => Quantizer.ToActivation(Observer.Range);

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape) => inputShape.ToArray();

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        if (Observing)
        {
            Observer.Observe(input.Data);
        }
        _output.Resize(input.Shape);
        _pass.Resize(input.Shape);
        if (Quantizes)
        {
            Apply(input.Data, Activation, _output.Data, _pass.Data);
        }
        else
        {
            input.Data.CopyTo(_output.Data);
            _pass.Data.Fill(1f);
        }
        _hasForward = true;
        return _output;
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        if (!_hasForward)
        {
            throw new InvalidOperationException($"{Description}: Backward called before Forward.");
        }
        RequireGradientShape(outputGradient, _output, Description);
        if (!ComputeInputGradient)
        {
            return null;
        }
        _inputGradient.Resize(_output.Shape);
        System.Numerics.Tensors.TensorPrimitives.Multiply(outputGradient.Data, _pass.Data, _inputGradient.Data);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace)
    {
        if (!Quantizes)
        {
            input.CopyTo(output);
            return;
        }
        QuantParams p = Activation;
        for (int i = 0; i < input.Length; i++)
        {
            output[i] = p.Dequantize(p.Quantize(input[i]));
        }
    }

    /// <summary>
    /// y = s (q - z) with q = <see cref="QuantParams.Quantize"/>(x), and pass = 1 where the unclamped code
    /// round_half_away(x / s) + z lies in [qmin, qmax], else 0 (the straight-through estimator's mask).
    /// </summary>
    public static void Apply(ReadOnlySpan<float> x, QuantParams p, Span<float> y, Span<float> pass)
    {
        if (y.Length != x.Length || pass.Length != x.Length)
        {
            throw new ArgumentException($"fake quantization: {x.Length} values, {y.Length} outputs, {pass.Length} mask entries.");
        }
        for (int i = 0; i < x.Length; i++)
        {
            int q = p.Quantize(x[i]);
            y[i] = p.Dequantize(q);
            // The code before clamping, computed as QuantParams.Quantize does (same division, same rounding).
            float scaled = x[i] / p.Scale;
            long unclamped = float.IsNaN(scaled) ? p.ZeroPoint
                : (long)MathF.Round(Math.Clamp(scaled, -1e9f, 1e9f), MidpointRounding.AwayFromZero) + p.ZeroPoint;
            pass[i] = unclamped >= p.QMin && unclamped <= p.QMax ? 1f : 0f;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Quantizes ? "FakeQuantize(uint8)" : "FakeQuantize(observe only)";
}
