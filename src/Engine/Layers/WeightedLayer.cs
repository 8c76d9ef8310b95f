namespace Engine.Layers;

/// <summary>
/// A layer with a weight and a bias whose neurons are its outputs: the output channels of a <see cref="Conv2d"/>, the
/// units of a <see cref="Linear"/>. Neuron i owns row i of the weight, viewed as [<see cref="Neurons"/>,
/// <see cref="WeightsPerNeuron"/>] (PyTorch's [out, in, kh, kw] and [out, in] are both row-major in that shape), and
/// bias[i]. Statistics, pruning, quantization and the file formats treat both kinds alike through this view.
/// </summary>
public abstract class WeightedLayer : Layer
{
    /// <summary>A layer around <paramref name="weight"/> (first dimension: neurons) and <paramref name="bias"/> [neurons].</summary>
    protected WeightedLayer(Parameter weight, Parameter bias)
    {
        if (bias.Value.Rank != 1 || weight.Value.Dim(0) != bias.Value.Length)
        {
            throw new ArgumentException($"a weight of shape {FloatTensor.Format(weight.Value.Shape)} needs a bias [{weight.Value.Dim(0)}].");
        }
        Weight = weight;
        Bias = bias;
        Parameters = [weight, bias];
    }

    /// <summary>Weights, [neurons, ...] with each neuron's incoming weights contiguous.</summary>
    public Parameter Weight { get; }

    /// <summary>Biases [neurons].</summary>
    public Parameter Bias { get; }

    /// <inheritdoc/>
    public sealed override IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Neurons: output channels or units.</summary>
    public int Neurons => Bias.Value.Length;

    /// <summary>Incoming weights of one neuron, its fan-in: Cin k k for a convolution, in for a linear layer.</summary>
    public int WeightsPerNeuron => Weight.Value.Length / Neurons;

    /// <summary>
    /// PyTorch's default initialisation: kaiming_uniform_(a = sqrt 5), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    /// fan_in = <see cref="WeightsPerNeuron"/>, for the weight, and the same bound for the bias. Weights are drawn first,
    /// then biases, from one stream, so a seed gives the same network on every machine.
    /// </summary>
    public void Initialize(SeededRandom random)
    {
        float bound = 1f / MathF.Sqrt(WeightsPerNeuron);
        Fill(Weight.Value.Data, random, bound);
        Fill(Bias.Value.Data, random, bound);
    }

    /// <summary>Checks a size before the parameters are allocated, so a bad one fails with the argument's name.</summary>
    protected static int Positive(int value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value, name);
        return value;
    }

    private static void Fill(Span<float> values, SeededRandom random, float bound)
    {
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = random.NextUniform(-bound, bound);
        }
    }
}
