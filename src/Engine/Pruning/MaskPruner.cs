using Engine.Layers;
using Engine.Training;

namespace Engine.Pruning;

/// <summary>
/// Pruning by masks: a pruned neuron's incoming weights and bias are set to zero and kept at zero while fine-tuning
/// (its gradients are zeroed before every optimiser step, so momentum and weight decay never move it, and its weights
/// are zeroed again after the step). The network keeps its shape; <see cref="StructuredPruner"/> gives the same outputs
/// with the neurons removed.
/// </summary>
public sealed class MaskPruner : ITrainingObserver
{
    private readonly List<(Parameter Weight, Parameter Bias, int RowLength, int[] Neurons)> _masks = [];

    private MaskPruner()
    {
    }

    /// <summary>Zeroes the planned neurons of <paramref name="network"/> in place and returns the mask that keeps them zero.</summary>
    public static MaskPruner Apply(Sequential network, PruningPlan plan, int[] inputShape)
    {
        IReadOnlyList<PruningGroup> groups = PruningGroups.Find(network, inputShape);
        plan.Validate(groups);
        var mask = new MaskPruner();
        foreach (PruningGroup g in groups)
        {
            int[] neurons = plan.RemovedFrom(g.Name);
            if (neurons.Length == 0)
            {
                continue;
            }
            mask._masks.Add((g.Layer.Weight, g.Layer.Bias, g.ParametersPerNeuron - 1, neurons));
        }
        mask.ZeroValues();
        return mask;
    }

    /// <summary>The number of zeroed neurons.</summary>
    public int MaskedNeurons => _masks.Sum(m => m.Neurons.Length);

    /// <summary>Zeroes the masked gradients, so the optimiser step leaves the masked weights at zero.</summary>
    public void OnGradients(Sequential network)
    {
        foreach (var m in _masks)
        {
            foreach (int n in m.Neurons)
            {
                m.Weight.Gradient.Data.Slice(n * m.RowLength, m.RowLength).Clear();
                m.Bias.Gradient.Data[n] = 0f;
            }
        }
    }

    /// <summary>Zeroes the masked weights again after a step (a guard against any optimiser state that could move them).</summary>
    public void OnStep(Sequential network) => ZeroValues();

    private void ZeroValues()
    {
        foreach (var m in _masks)
        {
            foreach (int n in m.Neurons)
            {
                m.Weight.Value.Data.Slice(n * m.RowLength, m.RowLength).Clear();
                m.Bias.Value.Data[n] = 0f;
            }
        }
    }
}
