using System.Text;
using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// Named layers applied in order, as PyTorch's Sequential or a module with attributes conv1, conv2, ...:
/// forward runs them first to last, backward last to first. Parameter names are "layer.weight", "layer.bias",
/// the keys of a PyTorch state_dict.
/// </summary>
public sealed class Sequential
{
    private readonly List<(string Name, Layer Layer)> _layers;
    private readonly Parameter[] _parameters;
    private int[]? _checkedInputShape;   // the last input shape OutputShape accepted: checking it again would allocate

    /// <summary>A network of the given named layers; names must be unique and non-empty.</summary>
    public Sequential(params (string Name, Layer Layer)[] layers)
    {
        if (layers.Length == 0)
        {
            throw new ArgumentException("a network needs at least one layer.", nameof(layers));
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, Layer layer) in layers)
        {
            ArgumentNullException.ThrowIfNull(layer);
            if (string.IsNullOrWhiteSpace(name) || name.Contains('.') || !seen.Add(name))
            {
                throw new ArgumentException($"layer name '{name}' is empty, contains '.', or is used twice.", nameof(layers));
            }
        }
        _layers = [.. layers];
        _parameters = [.. layers.SelectMany(l => l.Layer.Parameters)];
    }

    /// <summary>
    /// Threads every layer's training passes may use (each layer reads it once per call). Setting it sets every
    /// layer's <see cref="Layer.Threads"/>. Default: the processor count.
    /// </summary>
    public int Threads
    {
        get => _layers[0].Layer.Threads;
        set
        {
            WorkPartition.CheckThreads(value);
            foreach ((_, Layer layer) in _layers)
            {
                layer.Threads = value;
            }
        }
    }

    /// <summary>The layers with their names, first to last.</summary>
    public IReadOnlyList<(string Name, Layer Layer)> Layers => _layers;

    /// <summary>The layer called <paramref name="name"/>.</summary>
    public Layer this[string name] =>
        _layers.Find(l => l.Name == name).Layer ?? throw new KeyNotFoundException($"the network has no layer '{name}'.");

    /// <summary>Every trainable parameter with its state_dict name, in layer order.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        foreach ((string layerName, Layer layer) in _layers)
        {
            foreach (Parameter p in layer.Parameters)
            {
                yield return ($"{layerName}.{p.Name}", p);
            }
        }
    }

    /// <summary>The number of trainable scalars.</summary>
    public long ParameterCount => NamedParameters().Sum(p => (long)p.Parameter.Value.Length);

    /// <summary>The output shape for an input shape, checking every layer on the way (a wrong input is reported by the layer it reaches).</summary>
    public int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        int[] shape = inputShape.ToArray();
        foreach ((string name, Layer layer) in _layers)
        {
            try
            {
                shape = layer.OutputShape(shape);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"layer '{name}': {e.Message}", e);
            }
        }
        return shape;
    }

    /// <summary>Runs every layer in order; returns the last layer's output (owned by it, valid until the next call).</summary>
    public FloatTensor Forward(FloatTensor input)
    {
        if (_checkedInputShape is null || !input.Shape.SequenceEqual(_checkedInputShape))
        {
            OutputShape(input.Shape);
            _checkedInputShape = input.Shape.ToArray();
        }
        FloatTensor x = input;
        foreach ((_, Layer layer) in _layers)
        {
            x = layer.Forward(x);
        }
        return x;
    }

    /// <summary>
    /// Back-propagates dLoss/dOutput through every layer, accumulating parameter gradients. The input gradient is
    /// computed only when <paramref name="computeInputGradient"/> is set (training does not need it).
    /// </summary>
    public FloatTensor? Backward(FloatTensor outputGradient, bool computeInputGradient = false)
    {
        _layers[0].Layer.ComputeInputGradient = computeInputGradient;
        for (int i = 1; i < _layers.Count; i++)
        {
            _layers[i].Layer.ComputeInputGradient = true;
        }
        FloatTensor? gradient = outputGradient;
        for (int i = _layers.Count - 1; i >= 0; i--)
        {
            // A ReLU followed by an average pool: one fused pass gives the ReLU's input gradient (ReLU.BackwardThroughPool),
            // the same values as the two backward passes.
            if (FuseBackward && i >= 1 && _layers[i].Layer is AvgPool2d pool && _layers[i - 1].Layer is ReLU relu
                && relu.ComputeInputGradient && relu.FeedsInto(pool))
            {
                gradient = relu.BackwardThroughPool(pool, gradient!);
                i--;
                continue;
            }
            gradient = _layers[i].Layer.Backward(gradient!);
        }
        return gradient;
    }

    /// <summary>Whether <see cref="Backward"/> fuses the passes of adjacent layers where it can (tests and benchmarks compare both).</summary>
    internal bool FuseBackward { get; set; } = true;

    /// <summary>Sets every parameter gradient to zero.</summary>
    public void ZeroGradients()
    {
        foreach (Parameter p in _parameters)
        {
            p.ZeroGradient();
        }
    }

    /// <summary>Initialises every weighted layer as PyTorch does by default, in layer order, from one seeded stream.</summary>
    public void Initialize(SeededRandom random)
    {
        foreach ((_, Layer layer) in _layers)
        {
            if (layer is WeightedLayer weighted)
            {
                weighted.Initialize(random);
            }
        }
    }

    /// <summary>
    /// "conv1=conv2d(3,1,1);relu1=relu;...;pool=avgpool2d(4,4);flatten=flatten;fc1=linear;..." with each convolution's
    /// kernel, stride and padding and each pooling's kernel and stride; channel and feature counts are in the tensors.
    /// </summary>
    public string DescribeArchitecture()
    {
        var text = new StringBuilder();
        foreach ((string layerName, Layer layer) in _layers)
        {
            if (text.Length > 0)
            {
                text.Append(';');
            }
            text.Append(layerName).Append('=').Append(layer switch
            {
                Conv2d c => $"conv2d({c.KernelSize},{c.Stride},{c.Padding})",
                Linear => "linear",
                ReLU => "relu",
                AvgPool2d p => $"avgpool2d({p.KernelSize},{p.Stride})",
                Flatten => "flatten",
                _ => throw new NotSupportedException($"layer '{layerName}' ({layer}) cannot be saved to a model file."),
            });
        }
        return text.ToString();
    }

    /// <summary>One line per layer, as PyTorch prints a module.</summary>
    public override string ToString() =>
        "Sequential(\n" + string.Concat(_layers.Select(l => $"  ({l.Name}): {l.Layer}\n")) + ")";
}
