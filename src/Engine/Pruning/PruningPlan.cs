using Engine.Layers;

namespace Engine.Pruning;

/// <summary>Which neurons of which layers to remove: layer name -> sorted, distinct neuron indices.</summary>
public sealed class PruningPlan
{
    private readonly Dictionary<string, int[]> _removed = new(StringComparer.Ordinal);

    /// <summary>The layers with at least one neuron to remove, and those neurons in increasing order.</summary>
    public IReadOnlyDictionary<string, int[]> Removed => _removed;

    /// <summary>Marks <paramref name="neurons"/> of <paramref name="layer"/> for removal (duplicates are merged).</summary>
    public void Remove(string layer, IEnumerable<int> neurons)
    {
        int[] merged = (_removed.TryGetValue(layer, out int[]? existing) ? existing : []).Concat(neurons).Distinct().Order().ToArray();
        if (merged.Length > 0)
        {
            _removed[layer] = merged;
        }
    }

    /// <summary>The neurons removed from <paramref name="layer"/> (empty when none).</summary>
    public int[] RemovedFrom(string layer) => _removed.TryGetValue(layer, out int[]? r) ? r : [];

    /// <summary>
    /// Throws a clear <see cref="ArgumentException"/> unless every named layer is a prunable group of the network, every
    /// index is a neuron of it, and at least one neuron of each layer remains.
    /// </summary>
    public void Validate(IReadOnlyList<PruningGroup> groups)
    {
        foreach ((string layer, int[] neurons) in _removed)
        {
            PruningGroup group = groups.FirstOrDefault(g => g.Name == layer)
                ?? throw new ArgumentException($"layer '{layer}' cannot be pruned (prunable: {string.Join(", ", groups.Select(g => g.Name))}; the last layer's outputs are never pruned).");
            if (neurons[0] < 0 || neurons[^1] >= group.Neurons)
            {
                throw new ArgumentException($"layer '{layer}' has {group.Neurons} neurons; cannot remove neuron {(neurons[0] < 0 ? neurons[0] : neurons[^1])}.");
            }
            if (neurons.Length >= group.Neurons)
            {
                throw new ArgumentException($"pruning all {group.Neurons} neurons of layer '{layer}' would disconnect the network; keep at least one.");
            }
        }
    }

    /// <summary>Neurons of <paramref name="group"/> that stay, in increasing order.</summary>
    internal int[] Kept(PruningGroup group)
    {
        var removed = new HashSet<int>(RemovedFrom(group.Name));
        return Enumerable.Range(0, group.Neurons).Where(n => !removed.Contains(n)).ToArray();
    }
}
