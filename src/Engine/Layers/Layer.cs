using Engine.Kernels;

namespace Engine.Layers;

/// <summary>
/// One stage of a network with a hand-written forward and backward pass, in the style of llm.c: the forward pass
/// keeps what the backward pass needs (the input it saw, its own output), and the backward pass accumulates (+=)
/// into parameter gradients and writes the input gradient. Output and gradient tensors are owned by the layer and
/// reused across calls, so steady-state training allocates nothing; they stay valid until the next call.
/// </summary>
public abstract class Layer
{
    /// <summary>The trainable parameters, in the order PyTorch lists them (weight, then bias).</summary>
    public virtual IReadOnlyList<Parameter> Parameters => [];

    /// <summary>
    /// Whether <see cref="Backward"/> computes the gradient with respect to the input. The first layer of a network
    /// does not need it, and for a convolution it costs as much as the weight gradient.
    /// </summary>
    public bool ComputeInputGradient { get; set; } = true;

    /// <summary>
    /// Threads the training passes (<see cref="Forward"/>, <see cref="Backward"/>) may use, read once per call;
    /// <see cref="Sequential.Threads"/> sets it on every layer. Default: the processor count.
    /// </summary>
    public int Threads
    {
        get => _threads;
        set => _threads = WorkPartition.CheckThreads(value);
    }

    private int _threads = WorkPartition.DefaultThreads;

    /// <summary>The output shape for an input of shape <paramref name="inputShape"/>; throws a clear error when the input does not fit.</summary>
    public abstract int[] OutputShape(ReadOnlySpan<int> inputShape);

    /// <summary>Computes the output for <paramref name="input"/> and remembers the input for <see cref="Backward"/>.</summary>
    public abstract FloatTensor Forward(FloatTensor input);

    /// <summary>
    /// Given dLoss/dOutput for the last <see cref="Forward"/>, adds dLoss/dParameters into the parameter gradients and
    /// returns dLoss/dInput (or null when <see cref="ComputeInputGradient"/> is false).
    /// </summary>
    public abstract FloatTensor? Backward(FloatTensor outputGradient);

    /// <summary>
    /// Inference without training state: output[samples, per-sample output shape] for input[samples,
    /// <paramref name="sampleShape"/>], reading parameters and what <see cref="PrepareInference"/> computed, writing only
    /// <paramref name="output"/> and <paramref name="workspace"/>. Many threads may call it at once, each with its own
    /// workspace. Shapes here are per sample (no batch dimension), as in the int8 layers.
    /// </summary>
    public abstract void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace);

    /// <summary>
    /// Computes the read-only state <see cref="Infer"/> uses (for example weights packed for the micro-kernel) from the
    /// parameters as they are now; call it again after they change. Layers without such state do nothing.
    /// </summary>
    public virtual void PrepareInference()
    {
    }

    /// <summary>The per-sample output shape for a per-sample input shape (<see cref="OutputShape"/> with a batch of one).</summary>
    public int[] SampleOutputShape(ReadOnlySpan<int> sampleShape)
    {
        Span<int> batched = stackalloc int[sampleShape.Length + 1];
        batched[0] = 1;
        sampleShape.CopyTo(batched[1..]);
        return OutputShape(batched)[1..];
    }

    /// <summary>A PyTorch-like description, for example "Conv2d(1, 32, kernel_size=3, stride=1, padding=1)".</summary>
    public abstract override string ToString();

    /// <summary>
    /// <see cref="ToString"/>, built once: error checks on the hot path pass it along, and formatting it on every call
    /// would allocate.
    /// </summary>
    protected string Description => _description ??= ToString();

    private string? _description;

    /// <summary>The input remembered by the last forward pass; throws if there was none.</summary>
    protected static FloatTensor RequireForward(FloatTensor? cachedInput, string layer) =>
        cachedInput ?? throw new InvalidOperationException($"{layer}: Backward called before Forward.");

    /// <summary>Throws unless the gradient has the shape of the output it belongs to.</summary>
    protected static void RequireGradientShape(FloatTensor outputGradient, FloatTensor output, string layer)
    {
        if (!outputGradient.HasShape(output.Shape))
        {
            outputGradient.RequireShape(output.Shape, $"{layer} backward: output gradient");   // throws with the message
        }
    }
}
