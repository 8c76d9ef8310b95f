using Engine.Tensors;

namespace Engine.Layers;

/// <summary>A trainable tensor and the gradient of the loss with respect to it, accumulated by backward passes.</summary>
public sealed class Parameter
{
    /// <summary>A parameter of the given shape, zero-filled, with a zero gradient.</summary>
    public Parameter(string name, params int[] shape)
    {
        Name = name;
        Value = new FloatTensor(shape);
        Gradient = new FloatTensor(shape);
    }

    /// <summary>The name within its layer, as in a PyTorch state_dict: "weight" or "bias".</summary>
    public string Name { get; }

    /// <summary>The values.</summary>
    public FloatTensor Value { get; }

    /// <summary>dLoss/dValue, summed over the backward passes since the last <see cref="ZeroGradient"/>.</summary>
    public FloatTensor Gradient { get; }

    /// <summary>Sets the gradient to zero, before the next accumulation.</summary>
    public void ZeroGradient() => Gradient.Clear();
}
