using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Layers;

namespace Engine.Training;

/// <summary>
/// Stochastic gradient descent exactly as PyTorch's torch.optim.SGD defines it, for each parameter w with gradient g:
/// <code>
///   g = g + weight_decay w
///   b = g                                  on the first step
///   b = momentum b + (1 - dampening) g     afterwards
///   g = g + momentum b  (Nesterov)  or  g = b
///   w = w - lr g
/// </code>
/// </summary>
public sealed class Sgd
{
    private readonly Parameter[] _parameters;
    private readonly float[][] _momentum;
    private bool _started;

    /// <summary>An optimiser over <paramref name="parameters"/>.</summary>
    public Sgd(IEnumerable<Parameter> parameters, float learningRate, float momentum = 0f, float weightDecay = 0f,
        float dampening = 0f, bool nesterov = false)
    {
        _parameters = [.. parameters];
        if (!(learningRate >= 0f) || float.IsInfinity(learningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be a finite number >= 0.");
        }
        if (!(momentum >= 0f && momentum < 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be in [0, 1).");
        }
        if (!(weightDecay >= 0f) || float.IsInfinity(weightDecay))
        {
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number >= 0.");
        }
        if (nesterov && (momentum == 0f || dampening != 0f))
        {
            throw new ArgumentException("Nesterov momentum requires momentum > 0 and zero dampening (as in PyTorch).");
        }
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
        Dampening = dampening;
        Nesterov = nesterov;
        _momentum = _parameters.Select(p => new float[p.Value.Length]).ToArray();
    }

    /// <summary>The step size; a schedule may change it between steps.</summary>
    public float LearningRate { get; set; }

    /// <summary>The momentum factor.</summary>
    public float Momentum { get; }

    /// <summary>L2 penalty added to the gradient.</summary>
    public float WeightDecay { get; }

    /// <summary>Dampening of the momentum.</summary>
    public float Dampening { get; }

    /// <summary>Whether the Nesterov form is used.</summary>
    public bool Nesterov { get; }

    /// <summary>
    /// Applies one update to every parameter from its accumulated gradient: one vectorised pass per parameter
    /// (<see cref="Update"/>) reads w, its gradient and the momentum buffer once and writes w and the buffer once; no
    /// gradient copy is made.
    /// </summary>
    public void Step() => Step(null);

    /// <summary>
    /// <see cref="Step()"/>, also copying every parameter's value before the update into <paramref name="previousValues"/>
    /// (one array per parameter, or null for no copy) within the same pass, so the caller can undo the step without a
    /// pass of its own. Returns whether every updated value is finite (found in the same pass).
    /// </summary>
    internal bool Step(float[][]? previousValues)
    {
        var rule = new UpdateRule(LearningRate, Momentum, WeightDecay, Dampening, Nesterov, FirstStep: !_started);
        bool finite = true;
        for (int i = 0; i < _parameters.Length; i++)
        {
            Span<float> w = _parameters[i].Value.Data;
            if (w.Length != _momentum[i].Length)
            {
                throw new InvalidOperationException("SGD: a parameter changed shape; create a new optimiser after pruning.");
            }
            finite &= Update(w, _parameters[i].Gradient.Data, _momentum[i], rule, previousValues is null ? [] : previousValues[i]);
        }
        _started = true;
        return finite;
    }

    /// <summary>The hyper-parameters of one step, and whether it is the first (the momentum buffer starts as the gradient).</summary>
    internal readonly record struct UpdateRule(float LearningRate, float Momentum, float WeightDecay, float Dampening, bool Nesterov, bool FirstStep);

    /// <summary>
    /// PyTorch's SGD update of one parameter, element by element, in one pass (the formula in the class comment):
    /// g = grad + wd w; b = g (first step) or m b + (1 - dampening) g; d = g + m b (Nesterov) or b (or g without
    /// momentum); w = w - lr d. Products added to a value (PyTorch's add with alpha) are fused multiply-adds, in the
    /// vector body and the scalar tail alike, so every element gets the same operations whatever its position.
    /// </summary>
    internal static bool Update(Span<float> w, ReadOnlySpan<float> gradient, Span<float> momentumBuffer, in UpdateRule rule,
        Span<float> previous = default)
    {
        bool keepPrevious = !previous.IsEmpty;
        if (gradient.Length != w.Length || (rule.Momentum != 0f && momentumBuffer.Length != w.Length) || (keepPrevious && previous.Length < w.Length))
        {
            throw new ArgumentException($"SGD: parameter, gradient, momentum buffer and copy lengths differ ({w.Length}, {gradient.Length}, {momentumBuffer.Length}, {previous.Length}).");
        }
        float lr = -rule.LearningRate, m = rule.Momentum, wd = rule.WeightDecay, keep = 1f - rule.Dampening;
        bool momentum = m != 0f, first = rule.FirstStep, nesterov = rule.Nesterov;
        int i = 0;
        // Finiteness without a second pass: x * 0 is 0 for finite x and NaN for an infinity or a NaN, so this sum stays 0
        // exactly when every updated value is finite.
        float check = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float pw = ref MemoryMarshal.GetReference(w);
            ref float pg = ref MemoryMarshal.GetReference(gradient);
            ref float pb = ref MemoryMarshal.GetReference(momentumBuffer);
            ref float pp = ref MemoryMarshal.GetReference(previous);
            Vector256<float> vlr = Vector256.Create(lr), vm = Vector256.Create(m), vwd = Vector256.Create(wd), vkeep = Vector256.Create(keep);
            Vector256<float> vcheck = Vector256<float>.Zero;
            for (; i <= w.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> wi = Vector256.LoadUnsafe(ref pw, (nuint)i);
                if (keepPrevious)
                {
                    wi.StoreUnsafe(ref pp, (nuint)i);
                }
                Vector256<float> g = Vector256.FusedMultiplyAdd(vwd, wi, Vector256.LoadUnsafe(ref pg, (nuint)i));
                if (momentum)
                {
                    Vector256<float> b = first ? g : Vector256.FusedMultiplyAdd(vkeep, g, vm * Vector256.LoadUnsafe(ref pb, (nuint)i));
                    b.StoreUnsafe(ref pb, (nuint)i);
                    g = nesterov ? Vector256.FusedMultiplyAdd(vm, b, g) : b;
                }
                Vector256<float> updated = Vector256.FusedMultiplyAdd(vlr, g, wi);
                updated.StoreUnsafe(ref pw, (nuint)i);
                vcheck += updated * Vector256<float>.Zero;
            }
            check = Vector256.Sum(vcheck);
        }
        for (; i < w.Length; i++)
        {
            if (keepPrevious)
            {
                previous[i] = w[i];
            }
            float g = MathF.FusedMultiplyAdd(wd, w[i], gradient[i]);
            if (momentum)
            {
                float b = first ? g : MathF.FusedMultiplyAdd(keep, g, m * momentumBuffer[i]);
                momentumBuffer[i] = b;
                g = nesterov ? MathF.FusedMultiplyAdd(m, b, g) : b;
            }
            w[i] = MathF.FusedMultiplyAdd(lr, g, w[i]);
            check += w[i] * 0f;
        }
        return check == 0f;
    }
}
