using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// Scratch memory for one thread running a <see cref="QuantizedNetwork"/>: activations in two ping-pong buffers,
/// the packed GEMM operand, im2col or bordered-image scratch and int32 accumulators. Buffers only grow, so after the
/// first call of a given batch size nothing is allocated; the network keeps a pool of these so that concurrent
/// callers never share one.
/// </summary>
public sealed class QuantizedWorkspace
{
    private byte[] _activationA = [], _activationB = [], _packed = [], _scratch = [], _row = [], _band = [];
    private int[] _accumulators = [], _columnSums = [];

    /// <summary>First activation buffer, at least <paramref name="length"/> bytes.</summary>
    public Span<byte> ActivationA(int length) => ScratchBuffer.Grow(ref _activationA, length);

    /// <summary>Second activation buffer, at least <paramref name="length"/> bytes.</summary>
    public Span<byte> ActivationB(int length) => ScratchBuffer.Grow(ref _activationB, length);

    /// <summary>The packed right-hand GEMM operand.</summary>
    public Span<byte> Packed(int length) => ScratchBuffer.Grow(ref _packed, length);

    /// <summary>im2col matrix or bordered image for packing a convolution's input.</summary>
    public Span<byte> Scratch(int length) => ScratchBuffer.Grow(ref _scratch, length);

    /// <summary>One requantized row before it is scattered (linear layers write sample-major).</summary>
    public Span<byte> Row(int length) => ScratchBuffer.Grow(ref _row, length);

    /// <summary>The output codes of one band of rows, between a convolution and the pooling fused after it.</summary>
    internal Span<byte> Band(int length) => ScratchBuffer.Grow(ref _band, length);

    /// <summary>int32 accumulators of one GEMM.</summary>
    public Span<int> Accumulators(int length) => ScratchBuffer.Grow(ref _accumulators, length);

    /// <summary>Column sums of the packed operand (only for weights with non-zero zero points).</summary>
    public Span<int> ColumnSums(int length) => ScratchBuffer.Grow(ref _columnSums, length);
}
