using System.Numerics.Tensors;
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
    private readonly float[][] _scratch;
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
        _scratch = _parameters.Select(p => new float[p.Value.Length]).ToArray();
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

    /// <summary>Applies one update to every parameter from its accumulated gradient.</summary>
    public void Step()
    {
        for (int i = 0; i < _parameters.Length; i++)
        {
            Span<float> w = _parameters[i].Value.Data;
            if (w.Length != _momentum[i].Length)
            {
                throw new InvalidOperationException("SGD: a parameter changed shape; create a new optimiser after pruning.");
            }
            Span<float> g = _scratch[i];
            if (WeightDecay != 0f)
            {
                TensorPrimitives.MultiplyAdd(w, WeightDecay, _parameters[i].Gradient.Data, g);
            }
            else
            {
                _parameters[i].Gradient.Data.CopyTo(g);
            }
            if (Momentum != 0f)
            {
                Span<float> b = _momentum[i];
                if (!_started)
                {
                    g.CopyTo(b);
                }
                else
                {
                    TensorPrimitives.Multiply(b, Momentum, b);
                    TensorPrimitives.MultiplyAdd(g, 1f - Dampening, b, b);
                }
                if (Nesterov)
                {
                    TensorPrimitives.MultiplyAdd(b, Momentum, g, g);
                }
                else
                {
                    b.CopyTo(g);
                }
            }
            TensorPrimitives.MultiplyAdd(g, -LearningRate, w, w);
        }
        _started = true;
    }
}
