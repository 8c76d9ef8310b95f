using Engine.Kernels;

namespace Engine.Layers;

/// <summary>
/// Scratch memory for one thread running <see cref="Layer.Infer"/>: activations in two ping-pong buffers, the padded
/// image or im2col panels of a convolution, tap offsets and packed GEMM rows. Buffers only grow, so after the first
/// call of a given batch size nothing is allocated; an <see cref="InferenceNetwork"/> keeps a pool of these so that
/// concurrent callers never share one, which is what lets the layers themselves stay read-only during inference.
/// </summary>
public sealed class InferenceWorkspace
{
    private float[] _activationA = [], _activationB = [], _scratch = [], _packed = [], _band = [];
    private int[] _offsets = [];

    /// <summary>
    /// Threads one layer may split its own work across, for a partition that holds fewer samples than the machine has
    /// threads (batch 1): 1 when the batch itself is split between threads.
    /// </summary>
    public int LayerThreads { get; internal set; } = 1;

    /// <summary>First activation buffer, at least <paramref name="length"/> floats.</summary>
    public Span<float> ActivationA(int length) => ScratchBuffer.Grow(ref _activationA, length);

    /// <summary>Second activation buffer, at least <paramref name="length"/> floats.</summary>
    public Span<float> ActivationB(int length) => ScratchBuffer.Grow(ref _activationB, length);

    /// <summary>A convolution's zero-padded image, or its im2col matrix or panels.</summary>
    public Span<float> Scratch(int length) => ScratchBuffer.Grow(ref _scratch, length);

    /// <summary>Input rows packed for the GEMM micro-kernel (a linear layer's batch).</summary>
    public Span<float> Packed(int length) => ScratchBuffer.Grow(ref _packed, length);

    /// <summary>
    /// Raw outputs of a convolution band in a fused inference step (Conv2d.InferFused), one slice per thread that
    /// shares the sample.
    /// </summary>
    internal Span<float> Band(int length) => ScratchBuffer.Grow(ref _band, length);

    /// <summary>Tap offsets of the implicit convolution.</summary>
    public Span<int> Offsets(int length) => ScratchBuffer.Grow(ref _offsets, length);
}
