
namespace Engine.Layers;

/// <summary>
/// A prunable layer and what reads its neurons. A neuron is an output channel of a Conv2d or an output unit of a
/// Linear; its edges are its incoming weights and bias, and the inputs of the next weighted layer that read it:
/// one input channel of a Conv2d, one column of a Linear, or, through a Flatten, the <see cref="InputsPerNeuron"/>
/// consecutive columns (the neuron's whole feature map, channel-major) of a Linear.
/// </summary>
/// <param name="Name">The layer's name, for example "conv2".</param>
/// <param name="Layer">The prunable layer (Conv2d or Linear).</param>
/// <param name="ConsumerName">The next weighted layer's name.</param>
/// <param name="Consumer">The next weighted layer, whose inputs are the neurons' outputs.</param>
/// <param name="InputsPerNeuron">Inputs of the consumer fed by one neuron: 1, or H x W through a Flatten.</param>
public sealed record PruningGroup(string Name, WeightedLayer Layer, string ConsumerName, WeightedLayer Consumer, int InputsPerNeuron)
{
    /// <summary>The number of neurons: output channels or units.</summary>
    public int Neurons => Layer.Neurons;

    /// <summary>Parameters of one neuron's incoming edges: its weights and its bias.</summary>
    public int ParametersPerNeuron => Layer.WeightsPerNeuron + 1;
}

/// <summary>Derives the coupled groups of a network from its layer sequence, so any Sequential of the supported layers works.</summary>
public static class PruningGroups
{
    /// <summary>
    /// One group per weighted layer except the last (the network's outputs are never pruned). Between a layer and its
    /// consumer only shape-preserving-per-channel layers may stand: ReLU, AvgPool2d and Flatten.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="inputShape">One sample's shape, for example [1, 32, 32], to size feature maps at a Flatten.</param>
    public static IReadOnlyList<PruningGroup> Find(Sequential network, int[] inputShape)
    {
        var layers = network.Layers;
        var shapes = new List<int[]>();  // shapes[i] = input shape of layer i
        int[] shape = [1, .. inputShape];
        foreach ((_, Layer layer) in layers)
        {
            shapes.Add(shape);
            shape = layer.OutputShape(shape);
        }

        var groups = new List<PruningGroup>();
        for (int i = 0; i < layers.Count; i++)
        {
            if (layers[i].Layer is not WeightedLayer producer)
            {
                continue;
            }
            int inputsPerNeuron = 1;
            for (int j = i + 1; j < layers.Count; j++)
            {
                switch (layers[j].Layer)
                {
                    case ReLU or AvgPool2d:
                        continue;
                    case Flatten:
                        int[] s = shapes[j];
                        inputsPerNeuron = s.Length == 4 ? s[2] * s[3] : 1;
                        continue;
                    case WeightedLayer consumer:
                        if (consumer is Conv2d && inputsPerNeuron != 1)
                        {
                            throw new NotSupportedException($"layer '{layers[j].Name}' reads flattened features: cannot rewire '{layers[i].Name}'.");
                        }
                        groups.Add(new PruningGroup(layers[i].Name, producer, layers[j].Name, consumer, inputsPerNeuron));
                        j = layers.Count;
                        break;
                    default:
                        throw new NotSupportedException($"layer '{layers[j].Name}' ({layers[j].Layer}) between '{layers[i].Name}' and its consumer cannot be rewired.");
                }
            }
        }
        return groups;
    }
}
