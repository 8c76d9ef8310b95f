namespace Engine.Layers;

/// <summary>The size of one weighted layer: neurons, parameters, and multiply-accumulates per sample.</summary>
public readonly record struct LayerSize(string Name, int Neurons, long Parameters, long MultiplyAccumulates);

/// <summary>Counts what a network costs, layer by layer.</summary>
public static class NetworkSize
{
    /// <summary>
    /// For each Conv2d and Linear: neurons (output channels or units), parameters, and MACs per sample
    /// (Cout Cin k^2 OH OW for a convolution, in x out for a linear layer).
    /// </summary>
    public static IReadOnlyList<LayerSize> Describe(Sequential network, int[] inputShape)
    {
        var sizes = new List<LayerSize>();
        int[] shape = [1, .. inputShape];
        foreach ((string name, Layer layer) in network.Layers)
        {
            int[] output = layer.OutputShape(shape);
            switch (layer)
            {
                case Conv2d c:
                    long taps = (long)c.InChannels * c.KernelSize * c.KernelSize;
                    sizes.Add(new LayerSize(name, c.OutChannels, c.OutChannels * (taps + 1), c.OutChannels * taps * output[2] * output[3]));
                    break;
                case Linear l:
                    sizes.Add(new LayerSize(name, l.OutFeatures, (long)l.OutFeatures * (l.InFeatures + 1), (long)l.OutFeatures * l.InFeatures));
                    break;
            }
            shape = output;
        }
        return sizes;
    }
}
