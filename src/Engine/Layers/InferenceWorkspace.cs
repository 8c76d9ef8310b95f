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

    // Multiply-adds per sample below which splitting one sample's layer between threads costs more than it saves: a
    // hand-off (waking a worker and waiting for it) takes about 9 us on the 2-core machine, and far more when the other
    // core is busy with another process. conv1 (0.3 M, about 11 us at batch 1) and fc1 (0.5 M, about 24 us) stay on one
    // thread; conv2 by the implicit GEMM (18.9 M, about 180 us; 9.4 M when pruned by half) is split.
    private const long MinSplitMultiplyAdds = 2_000_000;

    /// <summary>
    /// Threads a layer splits one sample's work of <paramref name="multiplyAdds"/> between: <see cref="LayerThreads"/>
    /// where that pays for the hand-off, else 1.
    /// </summary>
    internal int SplitThreads(long multiplyAdds) => LayerThreads > 1 && multiplyAdds >= MinSplitMultiplyAdds ? LayerThreads : 1;

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
