using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// Int8 convolution (cross-correlation, zero padding, as <see cref="Layers.Conv2d"/>), one sample at a time:
/// <code>
///   packed  = pack(im2col(x[C, H, W]))          taps outside the image read the input zero point (real 0)
///   acc     = W[OC, C kh kw] packed             exact int8 GEMM, int32 [OC, OH OW]
///   y[OC, OH, OW] = requantize(acc)             fixed-point rescale, + zero point, clamp (fused ReLU)
/// </code>
/// </summary>
public sealed class QuantizedConv2d : QuantizedWeightedLayer
{
    /// <summary>
    /// A convolution with weight codes [OC, C, kh, kw] of <paramref name="weightBits"/> bits (4 to 8, one per sbyte); see
    /// <see cref="QuantizedWeightedLayer"/> for the arithmetic. 4-bit codes stay packed two per byte where the layer
    /// runs the GEMM (depth above <see cref="DirectConvQ8.MaxDepth"/>: <see cref="GemmS4U8"/>, and its tiles inside
    /// <see cref="PooledGemmQ8"/>) on AVX-VNNI; the direct kernel of shallow layers reads int8 panels, and so do the
    /// AVX2 and portable GEMMs of convolutions, into which the codes are widened at construction. A convolution re-reads
    /// its few weights from L1 for every tile, so halving them saves no memory traffic, while the unpacking is paid on
    /// every re-read: measured, 4-bit nibble panels made the whole network 1.2x (batch 64) to 1.4x (batch 1) slower on
    /// the AVX2 kernels, and about 4% slower on AVX-VNNI (docs/quantization.md, "16. Weight bits").
    /// </summary>
    public QuantizedConv2d(string name, QuantParams input, QuantParams output, sbyte[] weights, int[] weightShape,
        float[] weightScales, int[] weightZeroPoints, int[] bias, bool fusedRelu, int stride, int padding, int weightBits = 8)
        : base(name, input, output, weights, CheckShape(name, weightShape), weightScales, weightZeroPoints, bias, fusedRelu,
            weightBits, nibblePanels: DepthOf(weightShape) > DirectConvQ8.MaxDepth && GemmS8U8.Best == KernelVariant.AvxVnni)
    {
        if (stride <= 0 || padding < 0)
        {
            throw new ArgumentException($"{name}: stride {stride} and padding {padding} must be > 0 and >= 0.");
        }
        InChannels = weightShape[1];
        KernelSize = weightShape[2];
        Stride = stride;
        Padding = padding;
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Square kernel size.</summary>
    public int KernelSize { get; }

    /// <summary>Stride in both directions.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on every side.</summary>
    public int Padding { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> sampleShape)
    {
        ConvGeometry g = Geometry(sampleShape);
        return [OutFeatures, g.OutHeight, g.OutWidth];
    }

    /// <summary>Whether this layer runs the direct kernel (<see cref="DirectConvQ8"/>, depth up to <see cref="DirectConvQ8.MaxDepth"/>) rather than the GEMM.</summary>
    internal bool UsesDirectKernel => Depth <= DirectConvQ8.MaxDepth;

    /// <inheritdoc/>
    public override void Forward(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        if (!UsesDirectKernel)
        {
            ForwardViaGemm(input, sampleShape, samples, output, workspace);
            return;
        }
        ConvGeometry g = Geometry(sampleShape);
        int pixels = g.ColumnCols;
        Span<byte> packed = workspace.Packed(ConvPackQ8.PackedLength(g, Variant));
        Span<byte> scratch = workspace.Scratch(ConvPackQ8.ScratchLength(g));
        for (int s = 0; s < samples; s++)
        {
            ConvPackQ8.Pack(input.Slice(s * g.InputSize, g.InputSize), g, (byte)Input.ZeroPoint, scratch, packed, Variant);
            MultiplyRequantize(packed, pixels, output.Slice(s * OutFeatures * pixels, OutFeatures * pixels), pixels);
        }
    }

    /// <summary>
    /// The GEMM path for any depth: pack, <see cref="GemmS8U8.MultiplyPacked"/> into int32 accumulators, then requantize
    /// channel by channel (what <see cref="Forward"/> runs above <see cref="DirectConvQ8.MaxDepth"/>; the reference the
    /// direct kernel is tested against).
    /// </summary>
    internal void ForwardViaGemm(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<byte> output, QuantizedWorkspace workspace)
    {
        ConvGeometry g = Geometry(sampleShape);
        int pixels = g.ColumnCols;
        for (int s = 0; s < samples; s++)
        {
            Span<int> acc = Convolve(input.Slice(s * g.InputSize, g.InputSize), g, workspace);   // [OC, OH OW]
            Span<byte> y = output.Slice(s * OutFeatures * pixels, OutFeatures * pixels);         // [OC, OH, OW]
            for (int c = 0; c < OutFeatures; c++)
            {
                Requantize(c, acc.Slice(c * pixels, pixels), y.Slice(c * pixels, pixels));
            }
        }
    }

    /// <summary>
    /// Whether <see cref="ForwardPooled"/> can run this layer on inputs of <paramref name="sampleShape"/> followed by an
    /// average pooling of window and stride <paramref name="pool"/> without padding: a GEMM layer whose input packs
    /// directly (stride 1, output width a multiple of 16), so that every band of <paramref name="pool"/> output rows is
    /// whole packed panels.
    /// </summary>
    internal bool CanFusePooling(ReadOnlySpan<int> sampleShape, int pool)
    {
        ConvGeometry g = Geometry(sampleShape);
        return !UsesDirectKernel && pool > 0 && ConvPackQ8.CanPackDirect(g) && g.OutHeight >= pool && g.OutWidth >= pool;
    }

    /// <summary>
    /// This layer, then an average pooling of window and stride <paramref name="pool"/> (no padding), a band of
    /// <paramref name="pool"/> output rows at a time: pack the band's pixels, accumulate, requantize its channels (fused
    /// ReLU included), pool them while they are in cache, and write only the pooled codes [OC, OH / pool, OW / pool].
    /// Bit for bit <see cref="Forward"/> then <see cref="AvgPoolQ8.Forward(ReadOnlySpan{byte}, in ConvGeometry, Span{byte})"/>:
    /// a pooling window lies inside one band (stride = window), output rows below the last whole band are never pooled, and
    /// every step is the same integer function of the same inputs. With more than one workspace, the bands of each sample
    /// are split between that many threads (workspaces[first .. first + count), one each; each band's outputs belong to one thread; the results do not depend on the split).
    /// </summary>
    internal unsafe void ForwardPooled(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, int pool, Span<byte> output,
        QuantizedWorkspace[] workspaces, int first, int count)
    {
        ConvGeometry g = Geometry(sampleShape);
        if (!CanFusePooling(sampleShape, pool))
        {
            throw new InvalidOperationException($"{Name}: pooling {pool} cannot be fused for input [{string.Join(", ", sampleShape.ToArray())}].");
        }
        int bands = g.OutHeight / pool, outSize = OutFeatures * bands * (g.OutWidth / pool);
        if (input.Length < (long)samples * g.InputSize || output.Length < (long)samples * outSize)
        {
            throw new ArgumentException($"{Name}: {samples} samples do not fit input {input.Length} and output {output.Length}.");
        }
        fixed (byte* x = input, y = output)
        {
            for (int s = 0; s < samples; s++)
            {
                var work = new BandWork(this, x + (long)s * g.InputSize, y + (long)s * outSize, g, pool, workspaces, first);
                WorkPartition.Run(count, bands, 1, work);
            }
        }
    }

    // Bands [start, end) of one sample, with one workspace.
    private unsafe void PoolBands(byte* image, byte* pooled, in ConvGeometry g, int pool, int start, int end, QuantizedWorkspace workspace)
    {
        int bands = g.OutHeight / pool, pooledW = g.OutWidth / pool, columns = pool * g.OutWidth;
        Span<byte> bordered = workspace.Scratch(ConvPackQ8.ScratchLength(g));
        ConvPackQ8.Border(new ReadOnlySpan<byte>(image, g.InputSize), g, (byte)Input.ZeroPoint, bordered);
        Span<byte> packed = workspace.Packed(GemmS8U8.PackedActivationsLength(Depth, columns, Variant));
        Span<byte> band = workspace.Band(OutFeatures * columns);
        Span<byte> means = workspace.Row(OutFeatures * pooledW);
        var window = new ConvGeometry(OutFeatures, pool, g.OutWidth, pool, pool, pool, pool, 0, 0);
        bool inTiles = PoolsInTiles && CanPoolInTiles(pool);
        Span<int> sums = inTiles ? workspace.Accumulators(PooledGemmQ8.SumsLength(OutFeatures)) : default;
        for (int b = start; b < end; b++)
        {
            ConvPackQ8.PackBorderedRows(bordered, g, b * pool, (b + 1) * pool, packed, Variant);
            if (inTiles)
            {
                // Requantized and pooled tile by tile (docs/quantization.md, "15. Pooling inside the GEMM's tiles").
                MultiplyRequantizePool(packed, g.OutWidth / GemmS8U8.PanelWidth, pool, sums,
                    new Span<byte>(pooled + (long)b * pooledW, (OutFeatures - 1) * bands * pooledW + pooledW), bands * pooledW);
                continue;
            }
            Span<int> acc = Accumulate(packed, columns, workspace);                 // [OC, pool OW]
            for (int c = 0; c < OutFeatures; c++)
            {
                Requantize(c, acc.Slice(c * columns, columns), band.Slice(c * columns, columns));
            }
            AvgPoolQ8.Forward(band, window, means);                                // [OC, 1, OW / pool]
            for (int c = 0; c < OutFeatures; c++)
            {
                means.Slice(c * pooledW, pooledW).CopyTo(new Span<byte>(pooled + ((long)c * bands + b) * pooledW, pooledW));
            }
        }
    }

    /// <summary>
    /// Whether <see cref="ForwardPooled"/> requantizes and pools each GEMM tile while it is in L1
    /// (<see cref="PooledGemmQ8"/>, where the weights are symmetric) rather than a band of int32 accumulators at a time;
    /// on by default, off for benchmarks and tests that compare both. Same bytes either way.
    /// </summary>
    internal bool PoolsInTiles { get; set; } = true;

    private readonly unsafe struct BandWork(QuantizedConv2d layer, byte* image, byte* pooled, ConvGeometry g, int pool,
        QuantizedWorkspace[] workspaces, int first) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) => layer.PoolBands(image, pooled, g, pool, start, end, workspaces[first + partition]);
    }

    /// <inheritdoc/>
    public override void ForwardAccumulators(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output, QuantizedWorkspace workspace)
    {
        ConvGeometry g = Geometry(sampleShape);
        int pixels = g.ColumnCols;
        for (int s = 0; s < samples; s++)
        {
            Span<int> acc = Convolve(input.Slice(s * g.InputSize, g.InputSize), g, workspace);
            Span<float> y = output.Slice(s * OutFeatures * pixels, OutFeatures * pixels);
            for (int c = 0; c < OutFeatures; c++)
            {
                for (int j = 0; j < pixels; j++)
                {
                    y[c * pixels + j] = Dequantize(c, acc[c * pixels + j]);
                }
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"QuantizedConv2d({InChannels}, {OutFeatures}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}" +
        $"{(FusedRelu ? ", relu" : "")}, {(PerChannel ? "per-channel" : "per-tensor")})";

    private Span<int> Convolve(ReadOnlySpan<byte> image, in ConvGeometry g, QuantizedWorkspace workspace)
    {
        Span<byte> packed = workspace.Packed(ConvPackQ8.PackedLength(g, Variant));
        ConvPackQ8.Pack(image, g, (byte)Input.ZeroPoint, workspace.Scratch(ConvPackQ8.ScratchLength(g)), packed, Variant);
        return Accumulate(packed, g.ColumnCols, workspace);
    }

    private ConvGeometry Geometry(ReadOnlySpan<int> sampleShape)
    {
        if (sampleShape.Length != 3 || sampleShape[0] != InChannels)
        {
            throw new ArgumentException($"{Name}: expected an input [{InChannels}, H, W], got [{string.Join(", ", sampleShape.ToArray())}].");
        }
        var g = new ConvGeometry(InChannels, sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate(Name);
        return g;
    }

    // in kh kw, before the base constructor has checked the shape (a bad shape fails there, whatever this returns).
    private static long DepthOf(int[] shape) => shape.Length == 4 ? (long)shape[1] * shape[2] * shape[3] : 0;

    private static int[] CheckShape(string name, int[] shape)
    {
        if (shape.Length != 4 || shape.Any(d => d <= 0) || shape[2] != shape[3])
        {
            throw new ArgumentException($"{name}: convolution weight shape [{string.Join(", ", shape)}] is not [out, in, k, k].");
        }
        return shape;
    }
}
