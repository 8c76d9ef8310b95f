using CommunityToolkit.HighPerformance;
using Engine.Layers;

namespace Engine.Pruning;

/// <summary>
/// Removes neurons physically: for every pruned neuron of a layer, its row of weights (a [Cin, k, k] filter or a row of
/// a Linear) and its bias disappear, and so do the consumer's inputs that read it (an input channel of the next Conv2d,
/// a column of the next Linear, or the H x W columns its feature map feeds through a Flatten). The result is an ordinary,
/// smaller network: its outputs equal those of the masked network (<see cref="MaskPruner"/>), since a masked neuron
/// outputs ReLU(0) = 0 and so contributes nothing to its consumer.
/// </summary>
public static class StructuredPruner
{
    /// <summary>A new, smaller network; <paramref name="network"/> is left unchanged.</summary>
    public static Sequential Apply(Sequential network, PruningPlan plan, int[] inputShape)
    {
        IReadOnlyList<PruningGroup> groups = PruningGroups.Find(network, inputShape);
        plan.Validate(groups);
        var keptOutputs = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var keptInputs = new Dictionary<string, (int[] Kept, int PerNeuron)>(StringComparer.Ordinal);
        foreach (PruningGroup g in groups)
        {
            int[] kept = plan.Kept(g);
            keptOutputs[g.Name] = kept;
            keptInputs[g.ConsumerName] = (kept, g.InputsPerNeuron);
        }

        var layers = new List<(string, Layer)>();
        foreach ((string name, Layer layer) in network.Layers)
        {
            int[]? outputs = keptOutputs.GetValueOrDefault(name);
            (int[] Kept, int PerNeuron)? inputs = keptInputs.TryGetValue(name, out var k) ? k : null;
            layers.Add((name, layer switch
            {
                Conv2d c => CopyConv(c, outputs, inputs?.Kept),
                Linear l => CopyLinear(l, outputs, inputs),
                ReLU => new ReLU(),
                Flatten => new Flatten(),
                AvgPool2d p => new AvgPool2d(p.KernelSize, p.Stride),
                _ => throw new NotSupportedException($"layer '{name}' ({layer}) cannot be copied."),
            }));
        }
        return new Sequential([.. layers]) { Threads = network.Threads };
    }

    private static Conv2d CopyConv(Conv2d source, int[]? outputs, int[]? inputs)
    {
        outputs ??= Enumerable.Range(0, source.OutChannels).ToArray();
        inputs ??= Enumerable.Range(0, source.InChannels).ToArray();
        var copy = new Conv2d(inputs.Length, outputs.Length, source.KernelSize, source.Stride, source.Padding);
        int taps = source.KernelSize * source.KernelSize;
        // Row o of the weight seen as a matrix [Cout, Cin k k] is filter o; its input channel i is taps i k k .. + k k.
        ReadOnlySpan2D<float> w = ((ReadOnlySpan<float>)source.Weight.Value.Data).AsSpan2D(source.OutChannels, source.InChannels * taps);
        Span2D<float> dst = copy.Weight.Value.Data.AsSpan2D(outputs.Length, inputs.Length * taps);
        for (int o = 0; o < outputs.Length; o++)
        {
            ReadOnlySpan<float> filter = w.GetRowSpan(outputs[o]);
            Span<float> target = dst.GetRowSpan(o);
            for (int i = 0; i < inputs.Length; i++)
            {
                filter.Slice(inputs[i] * taps, taps).CopyTo(target.Slice(i * taps, taps));
            }
            copy.Bias.Value.Data[o] = source.Bias.Value.Data[outputs[o]];
        }
        return copy;
    }

    private static Linear CopyLinear(Linear source, int[]? outputs, (int[] Kept, int PerNeuron)? inputs)
    {
        outputs ??= Enumerable.Range(0, source.OutFeatures).ToArray();
        // Each kept input neuron feeds a block of PerNeuron consecutive columns (its feature map, channel-major).
        int[] columns = inputs is { } k
            ? k.Kept.SelectMany(n => Enumerable.Range(n * k.PerNeuron, k.PerNeuron)).ToArray()
            : Enumerable.Range(0, source.InFeatures).ToArray();
        var copy = new Linear(columns.Length, outputs.Length);
        ReadOnlySpan2D<float> w = ((ReadOnlySpan<float>)source.Weight.Value.Data).AsSpan2D(source.OutFeatures, source.InFeatures);   // [out, in]
        Span2D<float> dst = copy.Weight.Value.Data.AsSpan2D(outputs.Length, columns.Length);                                            // [out', in']
        for (int o = 0; o < outputs.Length; o++)
        {
            ReadOnlySpan<float> row = w.GetRowSpan(outputs[o]);
            Span<float> target = dst.GetRowSpan(o);
            for (int c = 0; c < columns.Length; c++)
            {
                target[c] = row[columns[c]];
            }
            copy.Bias.Value.Data[o] = source.Bias.Value.Data[outputs[o]];
        }
        return copy;
    }
}
